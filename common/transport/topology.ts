// Exchange, queue and routing key names of the AMQP topology (documented in topology.md).

export interface TopologyNames {
  /** direct, durable: controller -> amphora orders, routing key = amphora id. */
  amphoraExchange: string;
  /** direct, durable: amphora -> controller, routing keys `health` and `config.fetch`. */
  controllerExchange: string;
  /** durable: heartbeats (competing controller consumers). */
  healthQueue: string;
  /** durable: config fetch requests (competing controller consumers). */
  controllerQueue: string;
  healthRoutingKey: 'health';
  configFetchRoutingKey: 'config.fetch';
  /** durable: one amphora's orders; bound to amphoraExchange with the amphora id. */
  amphoraQueue(amphoraId: string): string;
  /** exclusive, auto-delete: one transport's answers, one per connection. */
  replyQueue(instance: string, generation: number): string;
}

export function topologyNames(prefix: string): TopologyNames {
  return {
    amphoraExchange: `${prefix}.amphora`,
    controllerExchange: `${prefix}.controller`,
    healthQueue: `${prefix}.health`,
    controllerQueue: `${prefix}.controller`,
    healthRoutingKey: 'health',
    configFetchRoutingKey: 'config.fetch',
    amphoraQueue: (amphoraId) => `${prefix}.amphora.${amphoraId}`,
    replyQueue: (instance, generation) => `${prefix}.reply.${instance}.${generation}`,
  };
}
