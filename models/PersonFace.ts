import { BaseModel } from './base.js';

/** One enrolled example of a member's face; its vector lives in the gallery under this id. */
export class PersonFace extends BaseModel {
  static tableName = 'person_faces';
  static jsonAttributes = ['face'];

  id!: string;
  personId!: string;
  /** The enrolment image in the blob store (kept so a model-pack switch can re-embed). */
  blobKey!: string;
  pack!: string;
  /** Box, score, landmarks, age, gender as detected at enrolment. */
  face!: Record<string, unknown>;
  createdAt!: Date;
}
