/** Conversations served at once by default: each holds its turn's cache (see docs/architecture.md). */
export const DEFAULT_MAX_CONVERSATIONS = 4;
