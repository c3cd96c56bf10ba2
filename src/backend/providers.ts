/** The execution providers a model can run on (onnx.ts maps them to onnxruntime's); a list the CLI offers without loading the runtime. */
export type ExecutionProvider = 'cpu' | 'cuda' | 'dml' | 'coreml';
export const EXECUTION_PROVIDERS: readonly ExecutionProvider[] = ['cpu', 'cuda', 'dml', 'coreml'];
