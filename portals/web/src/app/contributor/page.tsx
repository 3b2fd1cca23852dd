import type { Metadata } from "next";
import { RecentUploads } from "@/components/studio/RecentUploads";
import { UploadQueue } from "@/components/studio/UploadQueue";

export const metadata: Metadata = { title: "Upload photos" };

export default function ContributorHome() {
  return (
    <>
      <h1>Upload photos</h1>
      <div className="studio-home">
        <UploadQueue />
        <RecentUploads />
      </div>
    </>
  );
}
