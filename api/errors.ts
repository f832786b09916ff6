// Octavia's API exceptions. The error middleware renders any error carrying httpStatus and
// faultstring as {"faultcode", "faultstring", "debuginfo"}.

export class ApiError extends Error {
  constructor(
    readonly httpStatus: number,
    readonly faultstring: string,
  ) {
    super(faultstring);
  }
}

const code = (status: number) => (message: string) => new ApiError(status, message);
const badRequest = code(400);

export const errors = {
  validation: (detail: string) => badRequest(`Validation failure: ${detail}`),
  invalidInput: (field: string, value: unknown, reason: string) =>
    badRequest(`Invalid input for field/attribute ${field}. Value: '${pyStr(value)}'. ${reason}`),
  mandatory: (field: string) => badRequest(`Invalid input for field/attribute ${field}. Value: 'None'. Mandatory field missing.`),
  unknownAttributes: (argPath: string, names: string[]) =>
    badRequest(`Unknown attribute${names.length > 1 ? 's' : ''} for argument ${argPath}: ${names.join(', ')}`),
  notJson: () => badRequest('Request is not in valid JSON format'),
  invalidOption: (value: unknown, option: string) => badRequest(`${pyStr(value)} is not a valid option for ${option}`),
  disabledOption: (option: string, value: unknown) =>
    badRequest(`The selected ${option} is not allowed in this deployment: ${pyStr(value)}`),
  invalidFilter: () => badRequest('One or more arguments are either duplicate or invalid'),
  invalidSortKey: (key: string) => badRequest(`Supplied sort key '${key}' is not valid.`),
  invalidSortDir: (dir: string) => badRequest(`Supplied sort direction '${dir}' is not valid.`),
  invalidMarker: (marker: string) => badRequest(`Supplied pagination marker '${marker}' is not valid.`),
  invalidLimit: (limit: string) => badRequest(`Supplied pagination limit '${limit}' is not valid.`),
  invalidSubresource: (resource: string, id: string) => badRequest(`${resource} ${id} not found.`),
  l7rule: (error: string) => badRequest(`Error parsing L7Rule: ${error}`),
  l7policyArgs: (msg: string) => badRequest(`Invalid L7 Policy arguments: ${msg}`),
  invalidL7PolicyAction: (action: string) => badRequest(`Invalid L7 Policy action specified: ${action}`),
  invalidUrl: (url: string) => badRequest(`Not a valid URL: ${url}`),
  invalidL7Rule: (msg: string) => badRequest(`Error parsing L7Rule: Invalid L7 Rule: ${msg}`),
  invalidL7RuleString: (what: string) => badRequest(`Error parsing L7Rule: Invalid characters in ${what}`),
  invalidL7RuleRegex: (e: string) => badRequest(`Error parsing L7Rule: Unable to parse regular expression: ${e}`),
  invalidUrlPath: (path: string) => badRequest(`Not a valid URLPath: ${path}`),
  singleCreateDetailsMissing: (type: string, name: string) => badRequest(`Missing details for ${type} object: ${name}`),
  providerNotEnabled: (provider: string) => badRequest(`Provider '${provider}' is not enabled.`),
  providerFlavorMismatch: (flavor: string, provider: string) =>
    badRequest(`Flavor '${flavor}' is not compatible with provider '${provider}'`),
  listenerNoChildren: (protocol: string) => badRequest(`Protocol ${protocol} listeners cannot have child objects.`),
  missingProjectId: () => badRequest('Missing project ID in request where one is required.'),
  forbidden: () => new ApiError(403, 'Policy does not allow this request to be performed.'),
  quota: (resource: string) => new ApiError(403, `Quota has been met for resources: ${resource}`),
  notFound: (resource: string, id: string) => new ApiError(404, `${resource} ${id} not found.`),
  immutable: (resource: string, id: string) => new ApiError(409, `${resource} ${id} is immutable and cannot be updated.`),
  pendingState: (status: string, id: string) => new ApiError(409, `Invalid state ${status} of loadbalancer resource ${id}`),
  duplicateListener: (protocol: string, port: number) =>
    new ApiError(409, `Another Listener on this Load Balancer is already using protocol ${protocol} and protocol_port ${port}`),
  duplicateMember: (ip: string, port: number) =>
    new ApiError(409, `Another member on this pool is already using ip ${ip} on protocol_port ${port}`),
  duplicateHealthMonitor: () => new ApiError(409, 'This pool already has a health monitor'),
  duplicatePool: () => new ApiError(409, 'This listener already has a default pool'),
  poolInUse: (poolId: string, policyId: string) => new ApiError(409, `Pool ${poolId} is in use by L7 policy ${policyId}`),
  tooManyRules: (policyId: string) => new ApiError(409, `Too many rules on L7 policy ${policyId}`),
  recordExists: (field: string, name: string) => new ApiError(409, `A ${field} of ${name} already exists.`),
  inUse: (object: string, id: string) => new ApiError(409, `${object} ${id} is in use and cannot be modified.`),
  providerError: (provider: string, msg: string) => new ApiError(500, `Provider '${provider}' reports error: ${msg}`),
  providerNotFound: (provider: string) => new ApiError(501, `Provider '${provider}' was not found.`),
  providerNotImplemented: (provider: string, msg: string) =>
    new ApiError(501, `Provider '${provider}' does not support a requested action: ${msg}`),
  providerUnsupportedOption: (provider: string, msg: string) =>
    new ApiError(501, `Provider '${provider}' does not support a requested option: ${msg}`),
  bodyTooLarge: () => new ApiError(413, 'Request is too large.'),
  notFoundPath: () => new ApiError(404, 'The resource could not be found.'),
  methodNotAllowed: () => new ApiError(405, 'The method is not allowed for this resource.'),
};

/** Renders a value as Python's str() would, as Octavia's messages do (None, True, ['a']). */
export function pyStr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  return pyRepr(value);
}

function pyRepr(value: unknown): string {
  if (typeof value === 'string') return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(', ')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.entries(value).map(([k, v]) => `${pyRepr(k)}: ${pyRepr(v)}`).join(', ')}}`;
  }
  return pyStr(value);
}
