import { BaseModel } from './base.js';

/** One matched face at one store and time: what analytics roll up. Keyed by its face. */
export class Sighting extends BaseModel {
  static tableName = 'sightings';
  static idColumn = 'face_id';

  faceId!: string;
  captureId!: string;
  storeId!: string;
  merchantId!: string;
  subjectKind!: 'member' | 'visitor';
  /** Person or visitor id; kept after erasure (the row it named is gone) so counts stay. */
  subjectId!: string;
  personId!: string | null;
  visitorId!: string | null;
  seenAt!: Date;
  age!: number | null;
  gender!: 'male' | 'female' | null;
}
