// Each runtime integration file starts a control plane of its own (not the
// run-wide one) because some of them stop and restart the API server.
export { startControlPlane, type ControlPlane } from "../../testenv/controlplane.js";
