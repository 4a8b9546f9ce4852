// Timestamps (performance.now()) and outcome of one call, filled in as it runs, read when it finishes.
export interface CallTiming {
  readonly start: number;
  /** Wall-clock time (Date.now()) when the request arrived, for records. */
  readonly startedAt: number;
  upstreamStart?: number;
  upstreamEnd?: number;
  firstByte?: number;
  /** HTTP status sent to the agent (0 until known; 499 when the agent went away first). */
  status: number;
  /** Code of the error Warden answered with, if any. */
  error?: string;
  /** Code of an error told in-band after a stream had started. */
  streamError?: string;
}
