import { formatMoney, type Money } from "@/lib/money";

export function Price({ money }: { money: Money | null | undefined }) {
  if (!money) return <span className="muted">Price on request</span>;
  return <span>{formatMoney(money)}</span>;
}
