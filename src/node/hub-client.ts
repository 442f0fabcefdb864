/**
 * The node's connection to the hub: one mTLS channel (the node's own certificate, the region's
 * CA) carrying the exchange, directory, audit and policy services.
 */
import { AuditService } from '../gen/corridor/v1/audit_pb.js';
import { DirectoryService } from '../gen/corridor/v1/directory_pb.js';
import { ExchangeService } from '../gen/corridor/v1/exchange_pb.js';
import { PolicyService } from '../gen/corridor/v1/policy_pb.js';
import { RequestService } from '../gen/corridor/v1/request_pb.js';
import { SearchService } from '../gen/corridor/v1/search_pb.js';
import { ServiceClient, grpc } from '../infra/grpc.js';

export interface TlsMaterial {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
}

export interface HubConnection {
  readonly exchange: ServiceClient;
  readonly directory: ServiceClient;
  readonly audit: ServiceClient;
  readonly policy: ServiceClient;
  /** Cooperation requests (request.proto). */
  readonly requests: ServiceClient;
  /** Search over the bulletins released to an agency (search.proto). */
  readonly search: ServiceClient;
  close(): void;
}

export function connectHub(address: string, tls: TlsMaterial, options: grpc.ChannelOptions = {}): HubConnection {
  const credentials = grpc.credentials.createSsl(tls.ca, tls.key, tls.cert);
  const channelOptions: grpc.ChannelOptions = {
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.max_receive_message_length': 8 * 1024 * 1024,
    ...options,
  };
  const exchange = new ServiceClient(ExchangeService, address, credentials, channelOptions);
  // The other services share the exchange client's channel: one connection per node.
  const channelOverride = { channelOverride: exchange.raw.getChannel() };
  const directory = new ServiceClient(DirectoryService, address, credentials, channelOverride);
  const audit = new ServiceClient(AuditService, address, credentials, channelOverride);
  const policy = new ServiceClient(PolicyService, address, credentials, channelOverride);
  const requests = new ServiceClient(RequestService, address, credentials, channelOverride);
  const search = new ServiceClient(SearchService, address, credentials, channelOverride);
  return {
    exchange,
    directory,
    audit,
    policy,
    requests,
    search,
    close: () => {
      exchange.close();
    },
  };
}
