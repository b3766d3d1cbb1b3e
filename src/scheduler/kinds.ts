/** Which kinds of envelope a scheduler hands out: `pause mda|mta` takes one away (bounces go with mta). */
import type { EnvelopeKind } from '../queue/envelope.js';

export function allKinds(): Set<EnvelopeKind> {
  return new Set<EnvelopeKind>(['mda', 'mta', 'bounce']);
}

/** Pause or resume a kind; true when that changed anything. Bounces leave through the mta. */
export function setPaused(kinds: Set<EnvelopeKind>, kind: EnvelopeKind, paused: boolean): boolean {
  const changed = kinds.has(kind) === paused;
  for (const k of kind === 'mta' ? (['mta', 'bounce'] as const) : [kind]) {
    if (paused) kinds.delete(k);
    else kinds.add(k);
  }
  return changed;
}
