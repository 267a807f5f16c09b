// The LdapPair CustomResourceDefinition, built from the schema in ldappair.ts.
import { stringify } from "yaml";
import {
  CATEGORIES,
  GROUP,
  KIND,
  LdapPairSpec,
  LdapPairStatus,
  PLURAL,
  SHORT_NAMES,
  SINGULAR,
  VERSION,
} from "./ldappair.js";
import { toOpenApi } from "./openapi.js";

const readyCondition = (field: string) => `.status.conditions[?(@.type=="Ready")].${field}`;

// The default view shows a rollout as it goes (which server, which step);
// -o wide adds why the pair is (not) Ready.
export const PRINTER_COLUMNS = [
  { name: "Phase", type: "string", jsonPath: ".status.phase" },
  { name: "Image", type: "string", jsonPath: ".spec.image" },
  { name: "Ready", type: "string", jsonPath: ".status.readyServers", description: "Healthy servers" },
  { name: "Realm", type: "string", jsonPath: ".status.realm.syncState", description: "Realm sync state" },
  {
    name: "Server",
    type: "string",
    jsonPath: ".status.rollout.server",
    description: "Server in the rollout",
  },
  { name: "Step", type: "string", jsonPath: ".status.rollout.step", description: "Its step in the rollout" },
  { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
  { name: "Reason", type: "string", jsonPath: readyCondition("reason"), priority: 1 },
  { name: "Message", type: "string", jsonPath: readyCondition("message"), priority: 1 },
];

export function buildCrd() {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${PLURAL}.${GROUP}` },
    spec: {
      group: GROUP,
      names: {
        kind: KIND,
        listKind: `${KIND}List`,
        plural: PLURAL,
        singular: SINGULAR,
        shortNames: SHORT_NAMES,
        categories: CATEGORIES,
      },
      scope: "Namespaced",
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: PRINTER_COLUMNS,
          schema: {
            openAPIV3Schema: {
              type: "object",
              description:
                "LdapPair runs a site's two LDAP gateway servers on Proxmox VE, the Proxmox LDAP realm that points at them, and the nodes' DNS.",
              required: ["spec"],
              properties: {
                apiVersion: { type: "string" },
                kind: { type: "string" },
                metadata: { type: "object" },
                spec: toOpenApi(LdapPairSpec),
                status: toOpenApi(LdapPairStatus),
              },
            },
          },
        },
      ],
    },
  };
}

export const CRD_FILE = `crds/${PLURAL}.${GROUP}.yaml`;

export function renderCrdYaml(): string {
  const header = "# Generated from src/api/ldappair.ts by `npm run crds`. Do not edit by hand.\n";
  return header + stringify(buildCrd(), { lineWidth: 0 });
}
