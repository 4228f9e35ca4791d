/**
 * One OHLCV candle; times are epoch milliseconds (UTC). The one shape the
 * exchanges' data, the database's rows and the dashboard's charts share.
 */
export interface Candle {
  openTime: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  /** false for the candle still forming at the exchange's current time; later writes may update it. */
  isClosed: boolean;
}
