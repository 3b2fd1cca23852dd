import type { Metadata } from "next";
import { StudioHome } from "@/components/studio/StudioHome";

export const metadata: Metadata = { title: "Upload photos" };

export default function ContributorHome() {
  return (
    <>
      <h1>Upload photos</h1>
      <StudioHome />
    </>
  );
}
