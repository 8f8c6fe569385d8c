package dev.flowc.bench;

/** One window's count for one page (a Flink POJO), as the playground job emits it. */
public class ClickEventStatistics {
    public long windowStart;
    public long windowEnd;
    public String page;
    public long count;

    public ClickEventStatistics() {}

    public ClickEventStatistics(long windowStart, long windowEnd, String page, long count) {
        this.windowStart = windowStart;
        this.windowEnd = windowEnd;
        this.page = page;
        this.count = count;
    }
}
