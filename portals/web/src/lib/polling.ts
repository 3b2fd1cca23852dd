// The return page waits for the payment webhook: poll with a growing interval, give up politely.
export function nextDelay(attempt: number): number {
  return Math.min(1000 * 1.5 ** attempt, 5000);
}

export function totalWait(attempts: number): number {
  let sum = 0;
  for (let i = 0; i < attempts; i++) sum += nextDelay(i);
  return sum;
}

export const MAX_ATTEMPTS = 40; // a little over three minutes
