// Token layout shared by the RM, SFT and PPO: BOS + prompt + response (+ EOS), cut to a length from the
// prompt's oldest tokens with BOS kept, and left-padded batches.
import { describe, expect, it } from 'vitest';
import { BOS_ID, EOS_ID, PAD_ID, Tokenizer } from '../../shared/tokenizer';
import { encodeExample, leftPadBatch } from '../../worker/rlhf/batch';

const tok = Tokenizer.byteLevel();

describe('encodeExample', () => {
  it('BOS + prompt + response + EOS when it fits', () => {
    const e = encodeExample(tok, 'ab', 'c', 16);
    expect(e.ids).toEqual([BOS_ID, ...tok.encode('ab'), ...tok.encode('c'), EOS_ID]);
    expect(e.promptLen).toBe(3);
  });
  it('drops the oldest prompt tokens but keeps BOS first', () => {
    const e = encodeExample(tok, 'abcdef', 'xy', 6);
    expect(e.ids).toEqual([BOS_ID, ...tok.encode('ef'), ...tok.encode('xy'), EOS_ID]);
    expect(e.promptLen).toBe(3);
  });
});

describe('leftPadBatch', () => {
  it('pads on the left with PAD and a 0 mask', () => {
    const b = leftPadBatch([[5, 6, 7], [8]]);
    expect([...b.ids.data]).toEqual([5, 6, 7, PAD_ID, PAD_ID, 8]);
    expect([...b.mask.data]).toEqual([1, 1, 1, 0, 0, 1]);
    expect(b.pads).toEqual([0, 2]);
  });
});
