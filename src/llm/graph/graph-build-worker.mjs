// Entry of the graph-build worker thread. Workers do not inherit the parent's TypeScript loader,
// so this plain module registers tsx before loading the job.
import { register } from 'tsx/esm/api';

register();
await import('./graph-build-job.ts');
