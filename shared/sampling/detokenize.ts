// Incremental detokenisation for streaming: emit text as tokens arrive without ever splitting a UTF-8
// character (a byte-level token can end mid-character). Same scheme as Hugging Face TGI / vLLM: decode a
// window from the last clean boundary and release the new suffix only when it no longer ends in U+FFFD.
// Works with any tokenizer whose decode maps ids to a string via UTF-8 (byte-level BPE or raw bytes).

const REPLACEMENT = '\uFFFD';

/** Ids in, whole characters out; end() flushes what is left (an unfinished character as U+FFFD). */
export interface TokenDecoder {
  push(id: number): string;
  end(): string;
}

export class IncrementalDecoder implements TokenDecoder {
  private readonly ids: number[] = [];
  /** Start of the decode window (a clean character boundary). */
  private prefixOffset = 0;
  /** End of the text already released. */
  private readOffset = 0;

  constructor(private readonly decode: (ids: readonly number[]) => string) {}

  /** Adds one token; returns the text it completes ('' while a character is still partial). */
  push(id: number): string {
    this.ids.push(id);
    const prefixText = this.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const newText = this.decode(this.ids.slice(this.prefixOffset));
    if (newText.length > prefixText.length && !newText.endsWith(REPLACEMENT)) {
      this.prefixOffset = this.readOffset;
      this.readOffset = this.ids.length;
      return newText.slice(prefixText.length);
    }
    return '';
  }

  /** At the end of a sequence: whatever is left, an unfinished character included (as U+FFFD). */
  end(): string {
    const prefixText = this.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const rest = this.decode(this.ids.slice(this.prefixOffset)).slice(prefixText.length);
    this.prefixOffset = this.readOffset = this.ids.length;
    return rest;
  }
}
