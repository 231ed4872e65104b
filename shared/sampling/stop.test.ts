import { describe, expect, it } from 'vitest';
import { IncrementalDecoder } from './detokenize';
import { StopMatcher } from './stop';
import { Tokenizer } from '../tokenizer';

function feed(stops: string[], deltas: string[]) {
  const m = new StopMatcher(stops);
  let streamed = '';
  for (const d of deltas) {
    streamed += m.append(d);
    if (m.stoppedAt !== null) break;
  }
  streamed += m.finish();
  return { streamed, final: m.finalText, stopped: m.stoppedAt !== null };
}

describe('StopMatcher', () => {
  it('ends at the first stop string and excludes it', () => {
    expect(feed(['\n\n', 'END'], ['Hello', ' wor', 'ld\n', '\nmore'])).toEqual({ streamed: 'Hello world', final: 'Hello world', stopped: true });
    expect(feed(['END', 'ld'], ['Hello wor', 'ld END'])).toEqual({ streamed: 'Hello wor', final: 'Hello wor', stopped: true });
  });

  it('holds back a possible stop prefix and releases it when it turns out not to be one', () => {
    const m = new StopMatcher(['STOP']);
    expect(m.append('abc ST')).toBe('abc ');
    expect(m.append('O')).toBe('');
    expect(m.append('Px')).toBe('');
    expect(m.stoppedAt).toBe(4);
    const n = new StopMatcher(['STOP']);
    expect(n.append('abc ST')).toBe('abc ');
    expect(n.append('AR')).toBe('STAR');
  });

  it('streamed deltas always concatenate to the final text', () => {
    const text = 'the cat sat on the mat. the end.';
    for (const stops of [[], ['mat'], ['the end'], ['. '], ['zzz', 'on t'], ['t']]) {
      for (const size of [1, 2, 3, 7]) {
        const chunks = text.match(new RegExp(`[\\s\\S]{1,${size}}`, 'g'))!;
        const r = feed(stops, chunks);
        expect(r.streamed).toBe(r.final);
        const first = Math.min(...stops.map((s) => text.indexOf(s)).filter((i) => i >= 0));
        expect(r.final).toBe(Number.isFinite(first) ? text.slice(0, first) : text);
      }
    }
  });
});

describe('IncrementalDecoder', () => {
  it('never splits a UTF-8 character across deltas and reproduces decode()', () => {
    const tok = Tokenizer.byteLevel();
    const text = 'héllo 🙂 wörld — 日本';
    const ids = tok.encode(text); // one id per byte: multi-byte characters span several tokens
    const dec = new IncrementalDecoder((x) => tok.decode(x));
    const deltas = ids.map((id) => dec.push(id));
    deltas.push(dec.end());
    for (const d of deltas) expect(d.includes('\uFFFD')).toBe(false);
    expect(deltas.join('')).toBe(text);
    expect(deltas.filter((d) => d === '').length).toBeGreaterThan(0); // partial characters were held
  });

  it('flushes an unfinished character as U+FFFD at the end', () => {
    const tok = Tokenizer.byteLevel();
    const ids = tok.encode('a🙂').slice(0, 3); // 'a' + 2 of the emoji's 4 bytes
    const dec = new IncrementalDecoder((x) => tok.decode(x));
    const out = ids.map((id) => dec.push(id)).join('') + dec.end();
    expect(out).toBe(tok.decode(ids));
    expect(out.startsWith('a')).toBe(true);
    expect(out.endsWith('\uFFFD')).toBe(true);
  });
});
