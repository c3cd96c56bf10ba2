import type { EngineEvent } from '../../src/async-reasoning/events.ts';

/** All of a turn's events, each also shown to `onEvent` as it comes (with those so far). */
export async function collect(events: AsyncIterable<EngineEvent>, onEvent?: (e: EngineEvent, all: EngineEvent[]) => void): Promise<EngineEvent[]> {
  const all: EngineEvent[] = [];
  for await (const e of events) {
    all.push(e);
    onEvent?.(e, all);
  }
  return all;
}
