import { describe, expect, it } from 'vitest';
import { wordErrors } from '../../src/asr/word-errors.ts';

describe('wordErrors', () => {
  it('counts substitutions, insertions and deletions over words, ignoring case and spacing', () => {
    expect(wordErrors('what is the capital of france', 'What  is the capital of France')).toEqual({ errors: 0, words: 6 });
    expect(wordErrors('what is seven plus five', 'what is seven last time')).toEqual({ errors: 2, words: 5 }); // two substitutions
    expect(wordErrors('how far away is the moon', 'how far away is a')).toEqual({ errors: 2, words: 6 }); // a substitution and a deletion
    expect(wordErrors('the moon', 'oh the big moon')).toEqual({ errors: 2, words: 2 }); // two insertions
    expect(wordErrors('one two three', '')).toEqual({ errors: 3, words: 3 });
    expect(wordErrors('', 'stray words')).toEqual({ errors: 2, words: 0 });
  });
});
