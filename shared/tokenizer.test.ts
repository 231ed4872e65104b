import { describe, expect, it } from 'vitest';
import { BOS_ID, EOS_ID, PAD_ID, Tokenizer } from './tokenizer';

// A small merge table learned from a toy text, so BPE paths (not just bytes) are exercised without the corpus.
function toyTokenizer(): Tokenizer {
  const base = Tokenizer.byteLevel();
  const id = (s: string) => base.encode(s)[0];
  // merges: "t"+"h" → 259, "th"+"e" → 260, " "+"the" → 261, "e"+"r" → 262
  return new Tokenizer([[id('t'), id('h')], [259, id('e')], [id(' '), 260], [id('e'), id('r')]]);
}

const SAMPLES = ['', 'hello world', 'The other theatre. There!', 'naïve café — Grüße, 東京, Ελληνικά', 'emoji 👩‍👩‍👧 🎉🙂 and ZWJ', 'tabs\tand\nnewlines\r\n  double  spaces ', '<|eos|> is plain text here', "it's we're I'll 123 4.5e6"];

describe('byte-level BPE tokenizer', () => {
  for (const tok of [Tokenizer.byteLevel(), toyTokenizer()]) {
    it(`round-trips any text (vocab ${tok.vocabSize})`, () => {
      for (const s of SAMPLES) expect(tok.decode(tok.encode(s))).toBe(s);
      expect(tok.encode('')).toEqual([]);
    });
  }

  it('applies merges in order and never emits specials from text', () => {
    const tok = toyTokenizer();
    expect(tok.encode(' the')).toEqual([261]);
    expect(tok.encode('the')).toEqual([260]);
    expect(tok.encode('other').length).toBe(3); // o, the, r  (th+e beats e+r: earlier merge)
    const ids = tok.encode('<|eos|><|pad|><|bos|>');
    for (const s of [PAD_ID, BOS_ID, EOS_ID]) expect(ids).not.toContain(s);
    expect(tok.decode([BOS_ID, ...tok.encode('hi'), EOS_ID, PAD_ID])).toBe('hi');
  });

  it('writes a Hugging Face tokenizer.json it can read back exactly', () => {
    const tok = toyTokenizer();
    const json = JSON.parse(JSON.stringify(tok.toJSON()));
    expect(json.model.type).toBe('BPE');
    expect(json.pre_tokenizer.type).toBe('ByteLevel');
    expect(json.model.merges[0]).toEqual(['t', 'h']);
    expect(json.model.vocab['Ġthe']).toBe(261); // GPT-2 writes the space byte as Ġ
    expect(json.added_tokens.map((t: { content: string }) => t.content)).toEqual(['<|pad|>', '<|bos|>', '<|eos|>']);
    const back = Tokenizer.fromJSON(json);
    expect(back.vocabSize).toBe(tok.vocabSize);
    for (const s of SAMPLES) expect(back.encode(s)).toEqual(tok.encode(s));
    json.model.vocab['Ġthe'] = 5;
    expect(() => Tokenizer.fromJSON(json)).toThrow(/inconsistent/);
  });

  it('streams whole characters only, even when a character spans tokens', () => {
    const tok = Tokenizer.byteLevel();
    const text = 'a😀b東';
    const ids = tok.encode(text); // byte-level: the emoji is 4 tokens, 東 is 3
    expect(ids.length).toBe(1 + 4 + 1 + 3);
    const dec = tok.streamDecoder();
    const pieces = ids.map((id) => dec.push(id));
    expect(pieces).toEqual(['a', '', '', '', '😀', 'b', '', '', '東']);
    expect(dec.end()).toBe('');
    const cut = tok.streamDecoder();
    cut.push(ids[1]);
    expect(cut.end()).toBe('\uFFFD'); // an unfinished character is flushed as U+FFFD, never as broken UTF-16
  });
});
