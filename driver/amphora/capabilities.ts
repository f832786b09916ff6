import type { CapabilitySpec } from '../capabilities.ts';

export const AMPHORA_FLAVOR_CAPABILITIES: CapabilitySpec[] = [
  {
    name: 'loadbalancer_topology',
    type: 'string',
    enum: ['SINGLE', 'ACTIVE_STANDBY'],
    description: 'The load balancer topology. One of: SINGLE - One amphora per load balancer. ACTIVE_STANDBY - Two amphora per load balancer.',
  },
  { name: 'compute_flavor', type: 'string', description: 'The compute driver flavor ID.' },
  { name: 'amp_image_tag', type: 'string', description: 'The amphora image tag.' },
  { name: 'sriov_vip', type: 'boolean', description: 'When true, the VIP port will be created using an SR-IOV VF port.' },
  { name: 'allow_member_sriov', type: 'boolean', description: 'When true, users can request a member port be SR-IOV enabled at member creation time.' },
];

export const AMPHORA_AZ_CAPABILITIES: CapabilitySpec[] = [
  { name: 'compute_zone', type: 'string', description: 'The compute availability zone.' },
  { name: 'volume_zone', type: 'string', description: 'The volume availability zone.' },
  { name: 'management_network', type: 'string', description: 'The management network ID for the amphora.' },
  {
    name: 'valid_vip_networks',
    type: 'array',
    description: 'List of network IDs that are allowed for VIP use. This overrides/replaces the list of allowed networks configured in `octavia.conf`.',
  },
];
