// Entry of the model's worker thread (see step-runner.ts). Workers do not inherit the parent's
// TypeScript loader, so this plain module registers tsx before loading the job.
import { register } from 'tsx/esm/api';

register();
await import('./step-worker-job.ts');
