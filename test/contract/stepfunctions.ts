// A small, exact model of what the push rollout's state machine does with its input: the Task
// state's `Parameters` become the SendCommand request (Amazon States Language, "Parameters" and
// "Intrinsic functions": https://docs.aws.amazon.com/step-functions/latest/dg/input-output-inputpath-params.html).
//   covered:  static fields, copied as they are; a field whose name ends in `.$` with the value `$`
//             (the whole input) or a dotted path with array indices (`$.a.b[0]`); `States.Format`
//             with a literal template and path arguments.
//   not covered (throws): any other intrinsic, context object paths (`$$.`), filters and slices,
//             InputPath/OutputPath/ItemSelector; a path the input lacks (States.Runtime in AWS).
// The definition comes from the synthesized template (test/util.ts resolves its references).

/** Evaluates a Task state's `Parameters` against the state input, as Step Functions does. */
export function evaluateParameters(parameters: { [key: string]: unknown }, input: unknown): { [key: string]: unknown } {
  const out: { [key: string]: unknown } = {};
  for (const [key, value] of Object.entries(parameters)) {
    if (key.endsWith('.$')) {
      if (typeof value !== 'string') throw new Error(`${key}: a path or intrinsic must be a string`);
      out[key.slice(0, -2)] = value.startsWith('States.') ? intrinsic(value, input) : readPath(value, input);
    } else if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      out[key] = evaluateParameters(value as { [key: string]: unknown }, input);
    } else {
      out[key] = value;
    }
  }
  return out;
}

function readPath(path: string, input: unknown): unknown {
  if (path === '$') return input;
  const m = /^\$((?:\.[A-Za-z0-9_-]+(?:\[\d+\])?)+)$/.exec(path);
  if (!m) throw new Error(`path not modelled: ${path}`);
  let value: any = input;
  for (const step of m[1].slice(1).split('.')) {
    const [, name, index] = /^([A-Za-z0-9_-]+)(?:\[(\d+)\])?$/.exec(step)!;
    if (value === null || typeof value !== 'object' || !(name in value)) throw new Error(`States.Runtime: ${path} is not in the input`);
    value = value[name];
    if (index !== undefined) {
      if (!Array.isArray(value) || Number(index) >= value.length) throw new Error(`States.Runtime: ${path} is not in the input`);
      value = value[Number(index)];
    }
  }
  return value;
}

function intrinsic(expression: string, input: unknown): string {
  const m = /^States\.Format\('((?:[^'\\]|\\.)*)'((?:,\s*\$[^,)]*)*)\)$/.exec(expression);
  if (!m) throw new Error(`intrinsic not modelled: ${expression}`);
  const args = m[2].split(',').map(a => a.trim()).filter(a => a !== '').map(a => readPath(a, input));
  let i = 0;
  return m[1].replace(/\\(.)/g, '$1').replace(/\{\}/g, () => {
    if (i >= args.length) throw new Error(`States.Format: too few arguments in ${expression}`);
    const v = args[i++];
    if (typeof v === 'object') throw new Error('States.Format: arguments must be strings, numbers or booleans');
    return String(v);
  });
}
