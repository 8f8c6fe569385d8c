package dev.flowc.bench;

/**
 * A visit of the expression-heavy pipelines (a Flink POJO): the record of
 * {@code schema Visit { ts: timestamp, page: string, referrer: string, user: long }}
 * in bench/jobs/filter_strings.flow and its siblings.
 */
public class Visit {
    public long ts;
    public String page;
    public String referrer;
    public long user;

    public Visit() {}

    public Visit(long ts, String page, String referrer, long user) {
        this.ts = ts;
        this.page = page;
        this.referrer = referrer;
        this.user = user;
    }
}
