/**
 * The TCP proxy for network-fault tests (reset every connection, or silence them
 * as a vanished NAT entry or host would) lives with the database package's test
 * support, so its own connection tests use it too.
 */
export { TcpProxy } from "@candlekeep/db/testing";
