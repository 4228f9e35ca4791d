// The dashboard package's public face: the plugin the bot and the standalone server register, and its API types.
export { registerDashboard, DEFAULT_WEB_DIR, type DashboardOptions } from "./dashboard";
export { dashboardApi, BadRequestError, type DashboardSource, type LiveStatus } from "./api";
export type * from "./api-types";
export { assertProtected, isLoopbackHost, isLoopbackHostHeader, presentedToken, requireLoopbackHost, requireToken, DashboardUnprotectedError } from "./auth";
export { createHttpServer, capConnections, connectionCap, descriptorLimit, HTTP_TIMEOUTS, MAX_HTTP_CONNECTIONS, RESERVED_DESCRIPTORS, type HttpServerOptions } from "./http-server";
export { dashboardTokenSetting, loadDashboardConfig, type DashboardConfig } from "./config";
