/** "1 order", "3 orders": a count with its noun, for log lines and messages; `many` for an irregular plural. */
export const plural = (n: number, word: string, many = `${word}s`): string => `${n} ${n === 1 ? word : many}`;
