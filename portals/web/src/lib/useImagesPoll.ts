"use client";
import { useCallback, useEffect, useReducer, useState } from "react";
import { api, call, messageOf } from "./api";
import { INITIAL_POLL, pollPlan, pollReduce, type Needs, type PollState } from "./imagesPoll";

/** One poll of the contributor's images for the whole studio home; see imagesPoll.ts for its rules. */
export function useImagesPoll(needs: Needs): PollState & { refresh: () => void } {
  const [state, dispatch] = useReducer(pollReduce, INITIAL_POLL);
  const [nudge, setNudge] = useState(0);
  const { delayMs, perPage } = pollPlan(needs);
  useEffect(() => {
    let stop = false;
    let timer: number | undefined;
    // The next request waits for the previous answer: a slow API never has requests piling up.
    const tick = async () => {
      try {
        const page = await call(api.GET("/api/contributor/images", { params: { query: { per_page: perPage } } }));
        if (!stop) dispatch({ type: "loaded", images: page.items });
      } catch (err) {
        if (!stop) dispatch({ type: "failed", error: err, message: messageOf(err) });
      }
      if (!stop) timer = window.setTimeout(() => void tick(), delayMs);
    };
    void tick();
    return () => {
      stop = true;
      window.clearTimeout(timer);
    };
  }, [delayMs, perPage, nudge]);
  const refresh = useCallback(() => setNudge((n) => n + 1), []);
  return { ...state, refresh };
}
