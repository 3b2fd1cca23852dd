import type { Metadata } from "next";
import { RoyaltyLevels } from "@/components/admin/RoyaltyLevels";

export const metadata: Metadata = { title: "Royalty levels" };

export default function Page() {
  return (
    <>
      <h1>Royalty levels</h1>
      <RoyaltyLevels />
    </>
  );
}
