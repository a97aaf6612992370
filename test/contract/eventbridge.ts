// Small, exact models of the two EventBridge behaviours the prefetcher relies on, for what the
// synthesized templates use. Anything else throws, so that a template that starts using a
// construct these models do not know fails the contract tests instead of passing them wrongly.
//
// Event patterns (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html)
//   covered:  nested objects (every key of the pattern must match, keys of the event not in the
//             pattern are ignored); arrays of allowed values (any one may match); exact string
//             values (case-sensitive, and a string never equals a number or a boolean); `prefix`;
//             `anything-but` with a string or a list of strings, or with `wildcard` (a string or a
//             list; `*` matches any run of characters, "" only the empty string); `exists` (false:
//             the field is absent; true: present); `$or` (a list of patterns, any of which may
//             match, next to the other keys, all of which must); a field the event lacks never
//             matches (but `exists: false`); an event value that is an array matches when any of
//             its elements does.
//   not covered (throws): numeric, cidr, suffix, wildcard outside anything-but, equals-ignore-case,
//             anything-but with prefix/suffix, `*` escapes, null/number/boolean pattern values.
//
// Input transformers (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html)
//   covered:  InputPathsMap values that are dotted JSONPaths (`$.a.b-c`), with dashes; InputTemplate
//             `<var>` in a JSON position (not inside a string literal): replaced by the JSON text of
//             the value, a string JSON-quoted (documented) and escaped (assumed: not observable with
//             ECR events, whose values never hold a quote or a backslash); `<var>` inside a string literal:
//             replaced by the raw value, NOT escaped (the documented behaviour: "EventBridge doesn't
//             escape values extracted by Input Path"); a path the event lacks: the variable is not
//             created and the placeholder is replaced by nothing ("won't appear in the output").
//   not covered (throws): predefined variables (aws.events.*), bracket paths, array indices and
//             wildcards in paths, plain-string (non-JSON) templates.

/** A JSON value of an event. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** Does `event` match `pattern`? */
export function matchesPattern(pattern: { [key: string]: unknown }, event: { [key: string]: Json }): boolean {
  return Object.entries(pattern).every(([key, rule]) => {
    if (key === '$or') {
      if (!Array.isArray(rule) || rule.length < 2) throw new Error(`event pattern: $or needs a list of 2 or more patterns, got ${JSON.stringify(rule)}`);
      return rule.some(branch => matchesPattern(branch as { [key: string]: unknown }, event));
    }
    if (!(key in event)) {
      return Array.isArray(rule) && rule.some(allowed => isExists(allowed) && (allowed as { exists: boolean }).exists === false);
    }
    const value = event[key];
    if (Array.isArray(rule)) {
      const values = Array.isArray(value) ? value : [value];
      return values.some(v => rule.some(allowed => matchesValue(allowed, v)));
    }
    if (typeof rule === 'object' && rule !== null) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
      return matchesPattern(rule as { [key: string]: unknown }, value);
    }
    throw new Error(`event pattern: the value of "${key}" must be an array or an object, got ${JSON.stringify(rule)}`);
  });
}

function isExists(allowed: unknown): boolean {
  if (typeof allowed !== 'object' || allowed === null || !('exists' in allowed)) return false;
  if (typeof (allowed as { exists: unknown }).exists !== 'boolean') throw new Error(`event pattern: exists takes true or false, got ${JSON.stringify(allowed)}`);
  return true;
}

/** EventBridge wildcard: `*` is any run of characters; nothing else is special (no escapes modelled). */
function matchesWildcard(wildcard: string, value: string): boolean {
  if (wildcard.includes('\\')) throw new Error(`event pattern: wildcard escapes are not modelled, got ${wildcard}`);
  const regex = new RegExp(`^${wildcard.split('*').map(part => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[\\s\\S]*')}$`);
  return regex.test(value);
}

function matchesValue(allowed: unknown, value: Json): boolean {
  if (typeof allowed === 'string') return value === allowed;
  if (isExists(allowed)) return (allowed as { exists: boolean }).exists;
  if (typeof allowed === 'object' && allowed !== null && !Array.isArray(allowed)) {
    const entries = Object.entries(allowed);
    if (entries.length !== 1) throw new Error(`event pattern: one operator per matcher, got ${JSON.stringify(allowed)}`);
    const [op, arg] = entries[0];
    if (op === 'prefix' && typeof arg === 'string') {
      return typeof value === 'string' && value.startsWith(arg);
    }
    if (op === 'anything-but' && typeof arg === 'object' && arg !== null && !Array.isArray(arg)) {
      const inner = Object.entries(arg);
      if (inner.length !== 1 || inner[0][0] !== 'wildcard') throw new Error(`event pattern: only anything-but with wildcard is modelled among its operators, got ${JSON.stringify(allowed)}`);
      const wildcards = typeof inner[0][1] === 'string' ? [inner[0][1]] : inner[0][1];
      if (!Array.isArray(wildcards) || !wildcards.every(w => typeof w === 'string')) throw new Error(`event pattern: anything-but wildcard takes strings, got ${JSON.stringify(allowed)}`);
      if (typeof value !== 'string') throw new Error(`event pattern: anything-but on a ${typeof value} value is not modelled`);
      return !wildcards.some(w => matchesWildcard(w, value));
    }
    if (op === 'anything-but') {
      const excluded = typeof arg === 'string' ? [arg] : arg;
      if (!Array.isArray(excluded) || !excluded.every(e => typeof e === 'string')) {
        throw new Error(`event pattern: only anything-but with strings is modelled, got ${JSON.stringify(allowed)}`);
      }
      if (typeof value !== 'string') throw new Error(`event pattern: anything-but on a ${typeof value} value is not modelled`);
      return !excluded.includes(value);
    }
    throw new Error(`event pattern: operator "${op}" is not modelled, got ${JSON.stringify(allowed)}`);
  }
  throw new Error(`event pattern: only string values and operators are modelled, got ${JSON.stringify(allowed)}`);
}

/** The InputTransformer of an AWS::Events::Rule target, as synthesized. */
export interface InputTransformer {
  readonly InputPathsMap: { [name: string]: string };
  readonly InputTemplate: string;
}

/**
 * What EventBridge hands the target for `event`: the InputTemplate with every `<var>` replaced.
 * Returns the text (which a Run Command target parses as the document parameters).
 */
export function transformInput(transformer: InputTransformer, event: { [key: string]: Json }): string {
  const values = new Map<string, Json>();
  for (const [name, path] of Object.entries(transformer.InputPathsMap)) {
    if (name.startsWith('aws.events.')) throw new Error(`input transformer: ${name} is reserved`);
    const found = lookup(event, path);
    if (found !== undefined) values.set(name, found);
  }
  const template = transformer.InputTemplate;
  if (!template.trimStart().startsWith('{') && !template.trimStart().startsWith('[')) {
    throw new Error('input transformer: only JSON templates are modelled');
  }
  let out = '';
  let inString = false;
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if (c === '<') {
      const end = template.indexOf('>', i);
      const name = end > i ? template.slice(i + 1, end) : '';
      if (/^[A-Za-z0-9_.-]+$/.test(name)) {
        if (name.startsWith('aws.events.')) throw new Error(`input transformer: predefined variable <${name}> is not modelled`);
        if (!(name in transformer.InputPathsMap)) throw new Error(`input transformer: <${name}> is not in InputPathsMap`);
        const value = values.get(name);
        if (value !== undefined) {
          out += inString ? (typeof value === 'string' ? value : JSON.stringify(value)) : JSON.stringify(value);
        }
        i = end;
        continue;
      }
    }
    if (inString && c === '\\') {
      out += c + template[i + 1];
      i++;
      continue;
    }
    if (c === '"') inString = !inString;
    out += c;
  }
  return out;
}

/** `$.a.b-c` in `event`, or undefined when a step is missing. */
function lookup(event: Json, path: string): Json | undefined {
  if (!/^\$(\.[A-Za-z0-9_-]+)+$/.test(path)) throw new Error(`input transformer: only dotted paths are modelled, got ${path}`);
  let current: Json | undefined = event;
  for (const step of path.split('.').slice(1)) {
    if (typeof current !== 'object' || current === null || Array.isArray(current) || !(step in current)) return undefined;
    current = current[step];
  }
  return current;
}
