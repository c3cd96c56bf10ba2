declare module 'node-record-lpcm16';
