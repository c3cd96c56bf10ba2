// speech-rule-engine ships no type declarations; speakable.ts types the three calls it makes.
declare module 'speech-rule-engine';
