package dev.flowc.bench;

/** A click: event time in epoch milliseconds and the page clicked (a Flink POJO). */
public class ClickEvent {
    public long timestamp;
    public String page;

    public ClickEvent() {}

    public ClickEvent(long timestamp, String page) {
        this.timestamp = timestamp;
        this.page = page;
    }

    @Override
    public String toString() {
        return "ClickEvent{timestamp=" + timestamp + ", page=" + page + "}";
    }
}
