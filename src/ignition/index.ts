export {
  templateIgnition,
  nodeIgnition,
  nodeNetworkUnit,
  nodeResolvers,
  dataUrl,
  AUTOLOGIN_ARG,
  NODE_IP_SCRIPT,
  PATHS as IGNITION_PATHS,
  type NodeIgnitionEnv,
} from './build.js';
export { ignitionJson, ignitionHash, shortHash, checkCloudInitSize, SNIPPET_MAX_BYTES, CLOUDINIT_MAX_BYTES } from './json.js';
export { IGNITION_VERSION, type IgnitionConfig, type IgnitionFile, type IgnitionUnit, type IgnitionUser } from './types.js';
