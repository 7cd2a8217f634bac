/**
 * Field help from the JSON Schema's `description`s, so the side panel explains each key with
 * the same words as the published schema.
 */

type Schema = Record<string, unknown>;

function asSchema(value: unknown): Schema | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Schema) : undefined;
}

function resolve(root: Schema, node: Schema | undefined): Schema | undefined {
  const ref = node?.$ref;
  if (typeof ref !== 'string' || !ref.startsWith('#/')) return node;
  let target: unknown = root;
  for (const part of ref.slice(2).split('/')) target = asSchema(target)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  const resolved = asSchema(target);
  // A description beside the `$ref` says what this use of the definition is for.
  return resolved && typeof node?.description === 'string' ? { ...resolved, description: node.description } : resolved;
}

/** Every `properties` entry reachable from `node` through refs and combinators. */
function collectProperties(root: Schema, node: Schema | undefined, out: Map<string, Schema>, depth = 0): void {
  const schema = resolve(root, node);
  if (!schema || depth > 8) return;
  const properties = asSchema(schema.properties);
  if (properties) {
    for (const [key, value] of Object.entries(properties)) {
      const resolved = resolve(root, asSchema(value));
      if (resolved && (!out.has(key) || (!out.get(key)?.description && resolved.description))) out.set(key, resolved);
    }
  }
  for (const combinator of ['allOf', 'anyOf', 'oneOf']) {
    const list = schema[combinator];
    if (Array.isArray(list)) for (const item of list) collectProperties(root, asSchema(item), out, depth + 1);
  }
  for (const branch of ['then', 'else']) collectProperties(root, asSchema(schema[branch]), out, depth + 1);
}

function mapValueSchema(root: Schema, node: Schema | undefined): Schema | undefined {
  const schema = resolve(root, node);
  if (!schema) return undefined;
  const additional = asSchema(schema.additionalProperties);
  if (additional) return additional;
  const patterns = asSchema(schema.patternProperties);
  return patterns ? asSchema(Object.values(patterns)[0]) : undefined;
}

export interface Help {
  /** key -> description for the keys of one region. */
  region: Record<string, string>;
  /** prompt template name -> description, in the schema's order (the `prompts:` keys). */
  prompts: Record<string, string>;
  /** key -> description for the top-level keys. */
  top: Record<string, string>;
}

export function schemaHelp(root: Schema): Help {
  const top = new Map<string, Schema>();
  collectProperties(root, root, top);
  const region = new Map<string, Schema>();
  collectProperties(root, mapValueSchema(root, top.get('regions')), region);
  const descriptions = (map: Map<string, Schema>) =>
    Object.fromEntries([...map].filter(([, s]) => typeof s.description === 'string').map(([k, s]) => [k, String(s.description)]));
  const prompts = new Map<string, Schema>();
  collectProperties(root, region.get('prompts'), prompts);
  const promptHelp = Object.fromEntries([...prompts].map(([k, s]) => [k, typeof s.description === 'string' ? s.description : '']));
  return { region: descriptions(region), prompts: promptHelp, top: descriptions(top) };
}
