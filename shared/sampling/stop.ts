// Stop strings, as OpenAI documents them: generation ends at the first occurrence of any stop string, and the
// returned text excludes it. While streaming, text that might be the start of a stop string is held back, so
// the streamed deltas always concatenate to exactly the final text.

export class StopMatcher {
  private readonly stops: string[];
  private readonly longest: number;
  /** Text produced so far (clean, detokenised). */
  private text = '';
  /** Length of text already released to the caller. */
  private released = 0;
  /** Set once a stop string matched: the final text length. */
  stoppedAt: number | null = null;

  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s.length > 0);
    this.longest = this.stops.reduce((m, s) => Math.max(m, s.length), 0);
  }

  /** Appends detokenised text; returns the delta that is now safe to release. Check `stoppedAt` after. */
  append(delta: string): string {
    if (this.stoppedAt !== null) return '';
    const from = Math.max(0, this.text.length - this.longest + 1);
    this.text += delta;
    let first = -1;
    for (const s of this.stops) {
      const at = this.text.indexOf(s, from);
      if (at >= 0 && (first < 0 || at < first)) first = at;
    }
    if (first >= 0) {
      this.stoppedAt = first;
      return this.release(first);
    }
    return this.release(this.text.length - this.heldBack());
  }

  /** The sequence ended for another reason (EOS, length): release everything that was held back. */
  finish(): string {
    return this.release(this.stoppedAt ?? this.text.length);
  }

  /** The final text (valid after finish() or a stop match). */
  get finalText(): string {
    return this.text.slice(0, this.stoppedAt ?? this.text.length);
  }

  /** Length of the longest suffix of the text that is a proper prefix of some stop string. */
  private heldBack(): number {
    const max = Math.min(this.longest - 1, this.text.length);
    for (let k = max; k > 0; k--) {
      const suffix = this.text.slice(this.text.length - k);
      if (this.stops.some((s) => s.startsWith(suffix))) return k;
    }
    return 0;
  }

  private release(upTo: number): string {
    if (upTo <= this.released) return '';
    const out = this.text.slice(this.released, upTo);
    this.released = upTo;
    return out;
  }
}
