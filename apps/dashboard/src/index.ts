export { registerDashboard, DEFAULT_WEB_DIR, type DashboardOptions } from "./dashboard";
export { dashboardApi, BadRequestError, type DashboardSource, type LiveStatus } from "./api";
export type * from "./api-types";
export { assertProtected, isLoopbackHost, isLoopbackHostHeader, presentedToken, requireLoopbackHost, requireToken, DashboardUnprotectedError } from "./auth";
export { dashboardTokenSetting, loadDashboardConfig, type DashboardConfig } from "./config";
