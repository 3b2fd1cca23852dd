"use client";
import { useState } from "react";
import { useImagesPoll } from "@/lib/useImagesPoll";
import { RecentUploads } from "./RecentUploads";
import { UploadQueue, type QueueNeeds } from "./UploadQueue";

/** The upload queue and the latest uploads, fed by one poll so both say the same about each photo. */
export function StudioHome() {
  const [needs, setNeeds] = useState<QueueNeeds>({ fast: false, follow: false, onTheWay: 0 });
  const poll = useImagesPoll(needs);
  return (
    <div className="studio-home">
      <UploadQueue poll={poll} onNeeds={setNeeds} />
      <RecentUploads poll={poll} onTheWay={needs.onTheWay} />
    </div>
  );
}
