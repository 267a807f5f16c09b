// The LdapPair API, v1alpha1: the single source of the TypeScript types, the
// defaults, the validation rules and the CRD in crds/ (generated from here by
// `npm run crds`; a test fails when the committed CRD drifts).
//
// Fields that carry a `default` are required in the TypeScript type, because
// the API server fills them in before the operator ever reads the object; the
// CRD generator drops them from `required` so users may omit them.
import { Type, type Static } from "@sinclair/typebox";
import { OPERATOR_OWNED_ENV, ENV_NAME_PATTERN } from "../gateway/variables.js";
import {
  CONDITION_MESSAGE_MAX_LENGTH,
  CONDITION_REASON_MAX_LENGTH,
  CONDITION_REASON_PATTERN,
  CONDITION_STATUSES,
  CONDITION_TYPE_MAX_LENGTH,
  CONDITION_TYPE_PATTERN,
} from "../runtime/conditions.js";
import type { ObjectMeta } from "../runtime/resource.js";
import {
  DNS_LABEL_PATTERN,
  Duration,
  SecretKey,
  SecretKeyRef,
  SecretName,
  StringEnum,
} from "./schema-kit.js";

export const GROUP = "ldapgateway.io";
export const VERSION = "v1alpha1";
export const KIND = "LdapPair";
export const PLURAL = "ldappairs";
export const SINGULAR = "ldappair";
export const SHORT_NAMES = ["lp"];
export const CATEGORIES = ["ldapgateway"];
export const API_VERSION = `${GROUP}/${VERSION}`;

export const DEFAULT_IMAGE = "ghcr.io/mieweb/ldap-gateway:latest";
export const DEFAULT_SERVER_NAMES = ["ldap1", "ldap2"] as const;

// RE2 and ECMAScript agree on these, so CEL (API server) and the operator see the same.
const DOMAIN_PATTERN =
  "^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*\\.?$";
const DN_PATTERN = "^[A-Za-z][A-Za-z0-9-]*=[^,=+]+(,[ ]?[A-Za-z][A-Za-z0-9-]*=[^,=+]+)*$";
const IMAGE_TAGGED = "^([A-Za-z0-9.-]+(:[0-9]+)?/)?[a-z0-9._/-]+:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$";
const IPV4 =
  "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}";
const IPV4_PATTERN = `^${IPV4}$`;
const IPV4_CIDR_PATTERN = `^${IPV4}/([0-9]|[12][0-9]|3[0-2])$`;
const HTTPS_URL_PATTERN = "^https://[^\\s/?#@]+(/[^\\s]*)?$";
const HTTP_URL_PATTERN = "^https?://[^\\s/?#]+(/[^\\s]*)?$";
/** RFC 3339, as Kubernetes writes times: 2026-12-01T12:00:00Z. */
const RFC3339_PATTERN =
  "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$";
const REALM_PATTERN = "^[A-Za-z][A-Za-z0-9.\\-_]+$";
/** What Proxmox accepts in `env`: no control characters but tab. */
const ENV_VALUE_PATTERN = "^[^\\x00-\\x08\\x0a-\\x1f\\x7f]*$";

const celList = (names: readonly string[]) => `[${names.map((n) => `"${n}"`).join(", ")}]`;
const hasAddress = (server: string) => `(has(${server}.network) && has(${server}.network.ipv4))`;
/** The address without its prefix length: 10.0.0.5/24 and 10.0.0.5/16 are the same address. */
const addressOf = (server: string) => `${server}.network.ipv4.split('/')[0]`;

export const ServerNetwork = Type.Object(
  {
    ipv4: Type.Optional(
      Type.String({
        pattern: IPV4_CIDR_PATTERN,
        maxLength: 18,
        description: "Static IPv4 address with prefix length, e.g. 10.0.0.5/24. Omit for DHCP.",
      }),
    ),
    gateway: Type.Optional(
      Type.String({ pattern: IPV4_PATTERN, maxLength: 15, description: "IPv4 default gateway." }),
    ),
  },
  {
    description: "Static network settings of the server's eth0. Without them the server uses DHCP.",
    "x-kubernetes-validations": [
      { rule: "!has(self.gateway) || has(self.ipv4)", message: "network.gateway requires network.ipv4" },
    ],
  },
);

export const Server = Type.Object({
  name: Type.String({
    minLength: 1,
    maxLength: 63,
    pattern: DNS_LABEL_PATTERN,
    description:
      "Hostname of the container, also the gateway's LDAP_COMMON_NAME. Clients (SSSD) look for ldap1 and ldap2.",
  }),
  node: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 63,
      pattern: DNS_LABEL_PATTERN,
      description: "Proxmox node for this server; defaults to spec.proxmox.node.",
    }),
  ),
  network: Type.Optional(ServerNetwork),
});

export const ProxmoxTls = Type.Object(
  {
    caSecretRef: Type.Optional(
      SecretKeyRef("ca.crt", "PEM CA bundle that signed the Proxmox API certificate."),
    ),
    insecureSkipVerify: Type.Boolean({
      default: false,
      description: "Do not verify the Proxmox API certificate. Explicit, never implied.",
    }),
  },
  {
    default: {},
    "x-kubernetes-validations": [
      {
        rule: "!(has(self.caSecretRef) && self.insecureSkipVerify)",
        message: "set either tls.caSecretRef or tls.insecureSkipVerify, not both",
      },
    ],
  },
);

export const Proxmox = Type.Object({
  url: Type.String({
    maxLength: 2048,
    description: "Base URL of the Proxmox VE API, e.g. https://pve.example.com:8006.",
    "x-kubernetes-validations": [
      {
        rule: `self.matches(r'${HTTPS_URL_PATTERN}')`,
        message: "proxmox.url must be an https:// URL without credentials, e.g. https://pve.example.com:8006",
      },
    ],
  }),
  node: Type.String({
    minLength: 1,
    maxLength: 63,
    pattern: DNS_LABEL_PATTERN,
    description: "Default Proxmox node for the servers and the node that runs realm syncs.",
  }),
  credentialsSecretRef: Type.Object(
    {
      name: SecretName(),
      tokenIdKey: SecretKey("tokenId", "Key of the API token id, user@realm!name."),
      tokenSecretKey: SecretKey("tokenSecret", "Key of the API token's secret."),
    },
    { description: "Secret holding the API token id (user@realm!name) and its secret." },
  ),
  tls: ProxmoxTls,
  imageStorage: Type.String({
    minLength: 1,
    maxLength: 64,
    default: "local",
    description: "File-based storage with content vztmpl, where OCI images are pulled to.",
  }),
  rootStorage: Type.String({
    minLength: 1,
    maxLength: 64,
    default: "local-lvm",
    description: "Storage with content rootdir for the containers' root disks.",
  }),
  bridge: Type.String({
    minLength: 1,
    maxLength: 64,
    pattern: "^[A-Za-z0-9_.-]+$",
    default: "vmbr0",
    description: "Bridge of the containers' eth0.",
  }),
});

export const Resources = Type.Object(
  {
    cores: Type.Integer({ minimum: 1, maximum: 512, default: 1 }),
    memoryMiB: Type.Integer({ minimum: 64, maximum: 1048576, default: 512 }),
    swapMiB: Type.Integer({ minimum: 0, maximum: 1048576, default: 512 }),
    diskGiB: Type.Integer({ minimum: 1, maximum: 65536, default: 4 }),
    startOnBoot: Type.Boolean({
      default: true,
      description: "Start the containers when their node boots (Proxmox onboot).",
    }),
  },
  { default: {} },
);

export const ExtraEnvVar = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 128, pattern: ENV_NAME_PATTERN }),
    value: Type.String({
      maxLength: 4096,
      pattern: ENV_VALUE_PATTERN,
      description: "Proxmox cannot store control characters (newlines) in env; tab is allowed.",
    }),
  },
  {
    "x-kubernetes-validations": [
      {
        rule: `!(self.name in ${celList(OPERATOR_OWNED_ENV)})`,
        message: `extraEnv cannot set a variable the operator owns (${OPERATOR_OWNED_ENV.join(", ")})`,
      },
    ],
  },
);

export const Realm = Type.Object(
  {
    manage: Type.Boolean({ default: true, description: "Create the realm, keep it as specified, sync it." }),
    name: Type.String({ minLength: 2, maxLength: 32, pattern: REALM_PATTERN, default: "ldap" }),
    default: Type.Boolean({ default: true, description: "Make it the default realm of the login form." }),
    verifyCertificate: Type.Boolean({
      default: false,
      description: "The gateway serves a self-signed certificate, hence off by default.",
    }),
    emailAttribute: Type.String({
      minLength: 1,
      maxLength: 64,
      pattern: "^[a-z][a-z0-9-]*$",
      default: "mail",
    }),
    syncScope: StringEnum(["users", "groups", "both"], { default: "both" }),
    syncInterval: Duration({
      default: "1h",
      description: "How often to sync the realm in addition to the syncs after changes. 0s disables.",
    }),
    adopt: Type.Boolean({
      default: false,
      description: "Take over an existing realm of this name that the operator did not create.",
    }),
    syncNames: Type.Boolean({
      default: false,
      description:
        "Also import first and last names (sync_attributes firstname=givenname,lastname=sn, lower case: the gateway drops mixed-case attribute names).",
    }),
  },
  { default: {} },
);

export const NodeDns = Type.Object({
  nameserver: Type.String({
    pattern: IPV4_PATTERN,
    maxLength: 15,
    description: "The site's DNSMasq address, which resolves ldap1 and ldap2.",
  }),
  searchDomain: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 253,
      pattern: DOMAIN_PATTERN,
      description: "Defaults to spec.domain.",
    }),
  ),
  nodes: Type.Optional(
    Type.Array(Type.String({ minLength: 1, maxLength: 63, pattern: DNS_LABEL_PATTERN }), {
      maxItems: 64,
      "x-kubernetes-list-type": "set",
      description: "Nodes to configure; defaults to the nodes of the servers and spec.proxmox.node.",
    }),
  ),
});

export const ROLLOUT_STRATEGIES = ["RemoveThenCreate", "CreateThenSwap"] as const;

export const Rollout = Type.Object(
  {
    strategy: StringEnum(ROLLOUT_STRATEGIES, {
      default: "CreateThenSwap",
      description:
        "RemoveThenCreate follows the runbook (stop, delete, create, start); CreateThenSwap creates and configures the new container stopped while the old one serves, then swaps them, keeping the old one stopped until the new one passes. A change of env restarts in place with either.",
    }),
    healthGateTimeout: Duration({
      default: "5m",
      description: "How long a rebuilt server may take to pass the health gate.",
      max: {
        value: "1h",
        why: "a gateway answers within seconds of its start, so a longer gate only delays noticing a failed rollout",
      },
    }),
    settleTime: Duration({
      default: "45s",
      description:
        "Minimum time between one server going down and its peer going down (SSSD skips a failed server for 30s).",
      max: {
        value: "1h",
        why: "it only has to outlast SSSD's 30s retry of a failed server, and the rollout waits this long per server",
      },
    }),
    progressDeadline: Duration({
      default: "10m",
      description:
        "How long a step may wait (on the peer gate, on a server to come back) before the LdapPair reports Stalled.",
      max: {
        value: "24h",
        why: "a rollout step waits for seconds or minutes; a day without progress has long needed a person",
      },
    }),
    paused: Type.Boolean({
      default: false,
      description:
        "Hold the rollout between steps (a server that is down is brought back first); the annotation ldapgateway.io/paused does the same.",
    }),
    autoRollback: Type.Boolean({
      default: false,
      description:
        "Put a server that failed its health gate back on the previous configuration: CreateThenSwap starts the kept old container, RemoveThenCreate rebuilds it from the previous image.",
    }),
    restartedAt: Type.Optional(
      Type.String({
        pattern: RFC3339_PATTERN,
        maxLength: 64,
        description:
          "A timestamp (as kubectl rollout restart writes one): a new value rebuilds both servers one at a time through the gates without another change. A mutable tag such as :latest is pulled again under a new volume name.",
      }),
    ),
  },
  { default: {} },
);

export const LdapPairSpec = Type.Object(
  {
    domain: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 253,
        pattern: DOMAIN_PATTERN,
        description:
          "The site's internal domain; the base DN is derived from it (example.com -> dc=example,dc=com).",
      }),
    ),
    baseDN: Type.Optional(
      Type.String({
        minLength: 3,
        maxLength: 512,
        pattern: DN_PATTERN,
        description: "Explicit base DN; overrides the one derived from spec.domain.",
      }),
    ),
    image: Type.String({
      minLength: 1,
      maxLength: 512,
      default: DEFAULT_IMAGE,
      description: "Gateway OCI image, by tag: Proxmox pulls by tag and refuses digests.",
      "x-kubernetes-validations": [
        {
          rule: "!self.contains('@')",
          message: "image must be referenced by tag, not by digest: Proxmox refuses digests",
        },
        {
          rule: `self.contains('@') || self.matches(r'${IMAGE_TAGGED}')`,
          message: "image must carry a tag, e.g. ghcr.io/mieweb/ldap-gateway:1.4.0",
        },
      ],
    }),
    servers: Type.Array(Server, {
      minItems: 2,
      maxItems: 2,
      default: DEFAULT_SERVER_NAMES.map((name) => ({ name })),
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["name"],
      description: "Exactly two servers; clients fail over between them.",
      "x-kubernetes-validations": [
        // minItems reports a list of one; the size guard keeps the rules from failing to evaluate.
        {
          rule: "self.size() != 2 || self[0].name != self[1].name",
          message: "the two servers must have different names",
        },
        {
          rule: `self.all(a, !${hasAddress("a")} || self.exists_one(b, ${hasAddress("b")} && ${addressOf("b")} == ${addressOf("a")}))`,
          message:
            "the two servers must not have the same static address (network.ipv4): clients fail over between two addresses",
        },
      ],
    }),
    proxmox: Proxmox,
    resources: Resources,
    database: Type.Object({
      uriSecretRef: SecretKeyRef("uri", "Secret key holding SQL_URI, postgres://user:password@host:port/db."),
    }),
    notifications: Type.Optional(
      Type.Object({
        url: Type.String({
          maxLength: 2048,
          pattern: HTTP_URL_PATTERN,
          description: "Push endpoint; enables AUTH_BACKENDS=sql,notification.",
        }),
      }),
    ),
    requireAuthForSearch: Type.Boolean({ default: false }),
    groupMembers: Type.Boolean({
      default: true,
      description:
        "Give groups their members: SQL_QUERY_ALL_GROUPS also returns member_uids and members, so Proxmox realm syncs and getent group show them. Off renders the runbook's exact queries (groups without members). Changes the gateways' env, so the servers are restarted.",
    }),
    extraEnv: Type.Optional(
      Type.Array(ExtraEnvVar, {
        maxItems: 64,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
        description: "Additional gateway variables, e.g. LOG_LEVEL or SQL_SSL.",
      }),
    ),
    realm: Realm,
    nodeDns: Type.Optional(NodeDns),
    rollout: Rollout,
    deletionPolicy: StringEnum(["Delete", "Retain"], {
      default: "Retain",
      description: "What happens to the containers and the realm when the LdapPair is deleted.",
    }),
  },
  {
    "x-kubernetes-validations": [
      { rule: "has(self.domain) || has(self.baseDN)", message: "set spec.domain or spec.baseDN" },
      {
        rule: "!has(self.nodeDns) || has(self.nodeDns.searchDomain) || has(self.domain)",
        message: "nodeDns.searchDomain is required when spec.domain is not set",
      },
    ],
  },
);

export const Condition = Type.Object({
  type: Type.String({ maxLength: CONDITION_TYPE_MAX_LENGTH, pattern: CONDITION_TYPE_PATTERN }),
  status: StringEnum(CONDITION_STATUSES),
  observedGeneration: Type.Optional(Type.Integer({ minimum: 0 })),
  lastTransitionTime: Type.String({ format: "date-time" }),
  reason: Type.String({
    minLength: 1,
    maxLength: CONDITION_REASON_MAX_LENGTH,
    pattern: CONDITION_REASON_PATTERN,
  }),
  message: Type.String({ maxLength: CONDITION_MESSAGE_MAX_LENGTH }),
});

export const PHASES = [
  "Pending",
  "Provisioning",
  "Ready",
  "RollingUpdate",
  "Degraded",
  "Stalled",
  "Paused",
  "Deleting",
] as const;
export const SERVER_STATES = [
  "Absent",
  "Creating",
  "Stopped",
  "Starting",
  "Running",
  "Stopping",
  "Removing",
  "Conflict",
  "Unknown",
] as const;

const Time = (description?: string) =>
  Type.String({ format: "date-time", maxLength: 64, ...(description ? { description } : {}) });
const Upid = (description: string) => Type.String({ maxLength: 512, description });

export const ServerStatus = Type.Object({
  name: Type.String({ maxLength: 63 }),
  node: Type.Optional(Type.String({ maxLength: 63 })),
  vmid: Type.Optional(Type.Integer({ minimum: 100 })),
  address: Type.Optional(Type.String({ maxLength: 64 })),
  image: Type.Optional(Type.String({ maxLength: 512 })),
  configHash: Type.Optional(Type.String({ maxLength: 64 })),
  buildHash: Type.Optional(Type.String({ maxLength: 64 })),
  state: StringEnum(SERVER_STATES),
  healthy: Type.Boolean(),
  passes: Type.Optional(
    Type.Integer({ minimum: 0, description: "Consecutive passed health probes on the current address." }),
  ),
  healthySince: Type.Optional(Time("When the server last began passing its probe.")),
  lastDownAt: Type.Optional(
    Time(
      "When the server last went down (stopped by the operator or seen failing): the peer gate waits from it.",
    ),
  ),
  startedAt: Type.Optional(Time("When the operator last saw a start of this server succeed.")),
  lastProbeTime: Type.Optional(
    Time(
      "When the probe last changed its outcome (not rewritten while it stays the same: a steady pair writes nothing).",
    ),
  ),
  failedStep: Type.Optional(
    Type.String({
      maxLength: 64,
      description: "The probe step that failed last: connect, rootDse, knownUser, userCount.",
    }),
  ),
  envKeys: Type.Optional(
    Type.Array(Type.String({ maxLength: 128 }), {
      maxItems: 128,
      description:
        "The variables the operator last wrote into the env, so a removed extraEnv entry is removed too.",
    }),
  ),
  message: Type.Optional(Type.String({ maxLength: 4096 })),
});

export const ROLLBACK_MODES = ["Swap", "Rebuild"] as const;
export const ROLLBACK_STATES = ["RollingBack", "RolledBack", "Failed"] as const;

export const RolloutFailure = Type.Object(
  {
    server: Type.String({ maxLength: 63 }),
    image: Type.String({ maxLength: 512, description: "The image the server failed on." }),
    hash: Type.String({
      maxLength: 64,
      description: "The config hash it failed on: the record holds while the spec asks for it.",
    }),
    failedStep: Type.Optional(
      Type.String({
        maxLength: 64,
        description: "The probe step that failed: connect, rootDse, knownUser, userCount.",
      }),
    ),
    message: Type.String({ maxLength: 4096 }),
    time: Time("When the health gate was found failed."),
    previousImage: Type.Optional(Type.String({ maxLength: 512 })),
    previousHash: Type.Optional(Type.String({ maxLength: 64 })),
    rollback: Type.Optional(
      Type.Object({
        mode: StringEnum(ROLLBACK_MODES, {
          description:
            "Swap: the kept old container is started again; Rebuild: a new one from the previous image.",
        }),
        state: StringEnum(ROLLBACK_STATES),
        image: Type.String({ maxLength: 512, description: "What the server is rolled back to." }),
        hash: Type.Optional(Type.String({ maxLength: 64 })),
        since: Time(),
        message: Type.Optional(Type.String({ maxLength: 4096 })),
      }),
    ),
  },
  {
    description:
      "A server that failed its health gate during the rollout: the rollout holds (the peer untouched) until the spec asks for something else.",
  },
);

export const RolloutStatus = Type.Object({
  server: Type.Optional(Type.String({ maxLength: 63 })),
  step: Type.Optional(Type.String({ maxLength: 64 })),
  since: Type.Optional(Time("When the current step (or wait) began.")),
  strategy: Type.Optional(StringEnum(ROLLOUT_STRATEGIES)),
  targetImage: Type.Optional(Type.String({ maxLength: 512 })),
  targetHash: Type.Optional(Type.String({ maxLength: 64 })),
  previousImage: Type.Optional(Type.String({ maxLength: 512 })),
  previousHash: Type.Optional(Type.String({ maxLength: 64 })),
  updatedServers: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 })),
  message: Type.Optional(Type.String({ maxLength: 4096 })),
  failure: Type.Optional(RolloutFailure),
});

/** The Proxmox calls that return a task, by the name of the planner's action. */
export const TASK_ACTIONS = [
  "PullImage",
  "DeleteImage",
  "CreateContainer",
  "StartContainer",
  "StopContainer",
  "DeleteContainer",
  "SyncRealm",
] as const;

export const TaskStatus = Type.Object(
  {
    upid: Upid("The task id, read from the node named in it."),
    action: StringEnum(TASK_ACTIONS),
    server: Type.Optional(Type.String({ maxLength: 63 })),
    node: Type.Optional(Type.String({ maxLength: 63 })),
    vmid: Type.Optional(Type.Integer({ minimum: 100 })),
    startedAt: Time(),
    syncRequest: Type.Optional(
      Type.String({ maxLength: 256, description: "The sync-now annotation value this sync answers." }),
    ),
  },
  { description: "The one Proxmox task in flight; the next reconcile reads its outcome instead of waiting." },
);

export const LastFailure = Type.Object(
  {
    action: Type.String({ maxLength: 64 }),
    server: Type.Optional(Type.String({ maxLength: 63 })),
    reason: Type.Optional(Type.String({ maxLength: 128 })),
    time: Time(),
    attempts: Type.Integer({ minimum: 1 }),
    message: Type.String({ maxLength: 4096 }),
  },
  { description: "The last failed action; retried with backoff after `time`, growing with `attempts`." },
);

export const REALM_SYNC_STATES = ["Pending", "Syncing", "Synced", "Failed", "Conflict", "Unmanaged"] as const;
export const SYNC_REASONS = [
  "NeverSynced",
  "RealmCreated",
  "RealmUpdated",
  "ServerRebuilt",
  "SyncRequested",
  "Interval",
] as const;

export const RealmStatus = Type.Object({
  name: Type.Optional(Type.String({ maxLength: 32 })),
  syncState: Type.Optional(StringEnum(REALM_SYNC_STATES)),
  lastSyncTime: Type.Optional(Time()),
  lastSyncTask: Type.Optional(Upid("The task of the last sync.")),
  lastSyncReason: Type.Optional(StringEnum(SYNC_REASONS)),
  usersImported: Type.Optional(Type.Integer({ minimum: 0 })),
  groupsImported: Type.Optional(Type.Integer({ minimum: 0 })),
  groupsWithoutMembers: Type.Optional(Type.Integer({ minimum: 0 })),
  membersMissing: Type.Optional(
    Type.String({
      maxLength: 1024,
      description: "Why the last sync imported groups without members, and the fix.",
    }),
  ),
  pendingSync: Type.Optional(StringEnum(SYNC_REASONS, { description: "A sync owed since a change." })),
  syncRequest: Type.Optional(
    Type.String({ maxLength: 256, description: "The last sync-now annotation value a sync answered." }),
  ),
  message: Type.Optional(Type.String({ maxLength: 4096 })),
});

export const DatabaseStatus = Type.Object({
  reachable: Type.Boolean(),
  lastCheckTime: Type.Optional(Time("When the preflight last changed its outcome.")),
  users: Type.Optional(Type.Integer({ minimum: 0 })),
  message: Type.Optional(Type.String({ maxLength: 4096 })),
});

const DnsValues = Type.Object({
  search: Type.Optional(Type.String({ maxLength: 253 })),
  dns1: Type.Optional(Type.String({ maxLength: 64 })),
  dns2: Type.Optional(Type.String({ maxLength: 64 })),
  dns3: Type.Optional(Type.String({ maxLength: 64 })),
});

export const NodeDnsStatus = Type.Object({
  node: Type.String({ maxLength: 63 }),
  previous: DnsValues,
});

export const PulledImage = Type.Object({
  node: Type.String({ maxLength: 63 }),
  volid: Type.String({ maxLength: 512 }),
});

export const LdapPairStatus = Type.Object({
  observedGeneration: Type.Optional(Type.Integer({ minimum: 0 })),
  phase: Type.Optional(StringEnum(PHASES)),
  readyServers: Type.Optional(Type.String({ maxLength: 8, description: "Healthy servers, as N/2." })),
  conditions: Type.Optional(
    Type.Array(Condition, {
      maxItems: 32,
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["type"],
    }),
  ),
  servers: Type.Optional(
    Type.Array(ServerStatus, {
      maxItems: 2,
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["name"],
    }),
  ),
  task: Type.Optional(TaskStatus),
  lastFailure: Type.Optional(LastFailure),
  rollout: Type.Optional(RolloutStatus),
  realm: Type.Optional(RealmStatus),
  database: Type.Optional(DatabaseStatus),
  nodeDns: Type.Optional(
    Type.Array(NodeDnsStatus, {
      maxItems: 64,
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["node"],
      description: "Each node's DNS before the operator changed it, restored on deletion with policy Delete.",
    }),
  ),
  images: Type.Optional(
    Type.Array(PulledImage, {
      maxItems: 64,
      description: "Image volumes this LdapPair pulled, removed on deletion with policy Delete when unused.",
    }),
  ),
});

export type LdapPairSpec = Static<typeof LdapPairSpec>;
export type LdapPairStatus = Static<typeof LdapPairStatus>;
export type Condition = Static<typeof Condition>;
export type ServerSpec = Static<typeof Server>;
export type ServerStatus = Static<typeof ServerStatus>;
export type TaskStatus = Static<typeof TaskStatus>;
export type LastFailure = Static<typeof LastFailure>;
export type RealmStatus = Static<typeof RealmStatus>;
export type NodeDnsStatus = Static<typeof NodeDnsStatus>;
export type SyncReason = (typeof SYNC_REASONS)[number];
export type TaskAction = (typeof TASK_ACTIONS)[number];
export type ServerState = (typeof SERVER_STATES)[number];
export type Phase = (typeof PHASES)[number];
export type RolloutStrategy = (typeof ROLLOUT_STRATEGIES)[number];
export type RolloutStatus = Static<typeof RolloutStatus>;
export type RolloutFailure = Static<typeof RolloutFailure>;

/** An LdapPair as the API server returns it: defaults applied, always in a namespace. */
export interface LdapPair {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: ObjectMeta & { namespace: string };
  spec: LdapPairSpec;
  status?: LdapPairStatus;
}
