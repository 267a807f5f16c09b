// TypeBox schema -> Kubernetes structural OpenAPI v3 schema.
import type { TSchema } from "@sinclair/typebox";

export type OpenApiSchema = {
  type?: string;
  properties?: Record<string, OpenApiSchema>;
  items?: OpenApiSchema;
  required?: string[];
  default?: unknown;
  [key: string]: unknown;
};

/**
 * Plain JSON (TypeBox's symbol keys dropped), with defaulted properties taken
 * out of `required`: the API server defaults before it validates, so a user
 * may omit them, and the stored object always has them.
 */
export function toOpenApi(schema: TSchema): OpenApiSchema {
  return structural(JSON.parse(JSON.stringify(schema)) as OpenApiSchema);
}

function structural(node: OpenApiSchema): OpenApiSchema {
  const out: OpenApiSchema = { ...node };
  if (node.properties) {
    out.properties = Object.fromEntries(
      Object.entries(node.properties).map(([name, child]) => [name, structural(child)]),
    );
    const required = (node.required ?? []).filter((name) => node.properties?.[name]?.default === undefined);
    if (required.length > 0) out.required = required;
    else delete out.required;
  }
  if (node.items) out.items = structural(node.items);
  return out;
}
