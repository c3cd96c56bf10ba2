declare module 'app-builder-lib/out/util/config/config.js';
