import { BaseModel } from './base.js';

/** A face found in a capture; box and landmarks in the original image's pixels, after orientation. */
export class Face extends BaseModel {
  static tableName = 'faces';
  static jsonAttributes = ['landmarks', 'quality'];

  id!: string;
  captureId!: string;
  faceIndex!: number;
  boxX!: number;
  boxY!: number;
  boxWidth!: number;
  boxHeight!: number;
  landmarks!: [number, number][];
  score!: number;
  age!: number | null;
  gender!: 'male' | 'female' | null;
  genderConfidence!: number | null;
  quality!: Record<string, number> | null;
  matchKind!: 'member' | 'visitor' | null;
  personId!: string | null;
  visitorId!: string | null;
  similarity!: number | null;
  /** A matched face's embedding (float32), kept for "not this person"; cleared with its subject. */
  embedding!: Buffer | null;
  embeddingPack!: string | null;
}
