"""Horizon middleware for Argonaut's Horizon test: the peers of ../shared/peers have no Nova and
an API-only Neutron without the L3 extension (no routers, no floating IPs).

The octavia-dashboard (Zed) assumes both, so this Horizon (and only it) gets two shims, each
active only while the deployment lacks the feature:

- NoComputeServers: the Create Load Balancer wizard loads the project's Nova servers (offered as
  pool members) together with its subnets, flavors and availability zones, and keeps its loading
  bars for good when that request fails. Horizon answers /api/nova/servers/ with a 500 when the
  catalog has no compute service; this answers that request with an empty server list instead
  (members are then added by address, as "external members").
- NoFloatingIps: with OPENSTACK_NEUTRON_NETWORK['enable_router'] False (there is no router
  extension to ask), Horizon's load balancer views leave out the `floating_ip` entry they add
  otherwise, and the panel's table script reads `item.floating_ip.ip` unconditionally: the
  TypeError leaves the table empty. This adds the entry Horizon adds for a load balancer without
  a floating IP (an empty object).
"""
import json

from openstack_dashboard.api import base
from openstack_dashboard.api import neutron


class NoComputeServers:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (request.method == 'GET'
                and request.path.endswith('/api/nova/servers/')
                and request.user.is_authenticated
                and not base.is_service_enabled(request, 'compute')):
            from django.http import JsonResponse
            return JsonResponse({'items': []})
        return self.get_response(request)


class NoFloatingIps:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (request.method != 'GET'
                or '/api/lbaas/loadbalancers/' not in request.path
                or not request.GET.get('full')
                or response.status_code != 200
                or neutron.floating_ip_supported(request)):
            return response
        body = json.loads(response.content)
        items = body['items'] if 'items' in body else [body]
        for item in items:
            item.setdefault('floating_ip', {})
        response.content = json.dumps(body).encode()
        return response
