export { recordSightings, lockSubjects, retractCaptureSightings, type SightingInput, type SubjectRef } from './record.js';
export { reassignSightings, type Subject } from './reassign.js';
export { rebuildAnalytics, type RebuildOptions, type RebuildResult } from './rebuild.js';
export { sessionise, applySightings, mergeIntervals, AGE_BUCKETS, type VisitAgg, type SightingPoint } from './sessionise.js';
export { zone, Zone, isValidTimeZone, type Interval } from './time.js';
export { anonymiseSubject } from './anonymise.js';
