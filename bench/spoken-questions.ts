/** Questions spoken by espeak-ng in the recognition test and bench:capture (numbers spelled out). */
export const SPOKEN_QUESTIONS = [
  'what is seven plus five',
  'how many legs does a spider have',
  'what is the capital of france',
  'how many days are there in a week',
  'what is twelve divided by four',
  'can you tell me the time in london',
  'what is the square root of sixty four',
  'how far away is the moon',
];
