import type { Metadata } from "next";
import { ModerationQueue } from "@/components/admin/ModerationQueue";

export const metadata: Metadata = { title: "Review queue" };

export default function AdminHome() {
  return (
    <>
      <h1>Review queue</h1>
      <ModerationQueue />
    </>
  );
}
