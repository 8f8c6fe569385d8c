//! Reading Kafka messages from librdkafka a batch at a time.
//!
//! The `rdkafka` crate hands out one message per `poll`: each call takes
//! the consumer queue's lock, reads the clock three times (the crate once,
//! librdkafka twice for `max.poll.interval.ms`) and allocates an `Arc` for
//! the event. At a million messages a second that was a fifth of the Kafka
//! source's CPU (`bench/README.md`, 11-30). librdkafka's
//! `rd_kafka_consume_batch_queue` takes up to a batch of messages under one
//! lock; this crate wraps it, and nothing else.
//!
//! ```text
//!  partition fetch queues ──forward──▶ BatchQueue ──consume_batch──▶ Batch (messages, destroyed on drop)
//!  consumer queue: errors, commit results, messages fetched before the split ──▶ BaseConsumer::poll
//! ```
//!
//! [`BatchQueue::split`] forwards the fetch queues of the given partitions
//! to a queue of its own, as `rdkafka`'s `split_partition_queue` does for
//! one partition; events stay on the consumer's queue, which the caller
//! keeps polling. Messages fetched before a split may still sit on the
//! consumer queue: the caller drains it first, so that a partition's
//! offsets never go backwards. An `assign` or `incremental_assign` undoes
//! the forwarding of the partitions it touches: split again after each.
//!
//! Like `udf-host`, this is a crate of its own so that the runtime keeps
//! `unsafe_code = "forbid"`.

use std::ffi::{c_int, CStr, CString};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka_sys as rdsys;

/// A queue that the fetch queues of split partitions forward to, read a
/// batch at a time. It holds the consumer, which so outlives it.
pub struct BatchQueue {
    queue: NonNull<rdsys::rd_kafka_queue_t>,
    consumer: Arc<BaseConsumer>,
}

// SAFETY: librdkafka's queues are thread-safe (each has its own lock); the
// handle is only used through `&mut self` or `&self` calls that librdkafka
// documents as callable from any thread.
unsafe impl Send for BatchQueue {}

impl BatchQueue {
    /// A new, empty queue on `consumer`'s client.
    pub fn new(consumer: Arc<BaseConsumer>) -> Option<BatchQueue> {
        // SAFETY: the client pointer is valid while `consumer` lives, which
        // the `Arc` held here guarantees; a NULL result is handled.
        let queue = NonNull::new(unsafe { rdsys::rd_kafka_queue_new(consumer.client().native_ptr()) })?;
        Some(BatchQueue { queue, consumer })
    }

    /// Sends the messages fetched from now on for `topic`/`partition` here
    /// instead of to the consumer queue. False if librdkafka does not know
    /// the partition (not assigned).
    pub fn split(&self, topic: &str, partition: i32) -> bool {
        let Ok(topic) = CString::new(topic) else { return false };
        // SAFETY: valid client pointer (see `new`) and a NUL-terminated topic
        // name that lives across the call.
        let fetch = unsafe {
            rdsys::rd_kafka_queue_get_partition(self.consumer.client().native_ptr(), topic.as_ptr(), partition)
        };
        let Some(fetch) = NonNull::new(fetch) else { return false };
        // SAFETY: both queues are valid; forwarding takes its own reference
        // to the destination, and the partition queue's handle, which
        // `rd_kafka_queue_get_partition` gave us a reference to, is
        // released right after (the forwarding stays).
        unsafe {
            rdsys::rd_kafka_queue_forward(fetch.as_ptr(), self.queue.as_ptr());
            rdsys::rd_kafka_queue_destroy(fetch.as_ptr());
        }
        true
    }

    /// Waits up to `timeout` for the first message, then takes what is
    /// there, at most `max` and the batch's capacity. The messages of the
    /// batch's previous read are destroyed first.
    pub fn read<'b>(&mut self, timeout: Duration, max: usize, batch: &'b mut Batch) -> &'b [Message<'b>] {
        batch.clear();
        let want = batch.raw.capacity().min(max);
        if want == 0 {
            return &[];
        }
        let ms = c_int::try_from(timeout.as_millis()).unwrap_or(c_int::MAX);
        // SAFETY: the buffer has room for `want` pointers; librdkafka writes
        // at most that many and returns how many (or -1 on error).
        let n = unsafe { rdsys::rd_kafka_consume_batch_queue(self.queue.as_ptr(), ms, batch.raw.as_mut_ptr(), want) };
        let n = usize::try_from(n).unwrap_or(0).min(want);
        // SAFETY: librdkafka initialised the first `n` pointers.
        unsafe { batch.raw.set_len(n) };
        // SAFETY: `Message` is a transparent wrapper of a non-null message
        // pointer, which each of the `n` is; they live until `batch.clear`,
        // which needs the `&mut` that the returned borrow holds.
        unsafe { std::slice::from_raw_parts(batch.raw.as_ptr().cast::<Message<'b>>(), n) }
    }
}

impl Drop for BatchQueue {
    fn drop(&mut self) {
        // SAFETY: the queue was created by `rd_kafka_queue_new` and is
        // released once; partitions still forwarding to it hold their own
        // references, which librdkafka drops on unassign or close.
        unsafe { rdsys::rd_kafka_queue_destroy(self.queue.as_ptr()) }
    }
}

/// The messages of one read, kept until the next read (or the drop).
pub struct Batch {
    raw: Vec<*mut rdsys::rd_kafka_message_t>,
}

// SAFETY: the messages are owned by the batch; librdkafka lets a message be
// read and destroyed on any thread.
unsafe impl Send for Batch {}

impl Batch {
    /// Room for `capacity` messages a read.
    pub fn with_capacity(capacity: usize) -> Batch {
        Batch { raw: Vec::with_capacity(capacity.max(1)) }
    }

    /// Gives the messages back to librdkafka, and the fetch buffers they
    /// hold with them (a read does it too, before it reads).
    pub fn clear(&mut self) {
        for m in self.raw.drain(..) {
            // SAFETY: each pointer came from `rd_kafka_consume_batch_queue`
            // and is destroyed exactly once, here.
            unsafe { rdsys::rd_kafka_message_destroy(m) }
        }
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        self.clear();
    }
}

/// One message of a batch, read in place.
#[repr(transparent)]
pub struct Message<'b> {
    raw: NonNull<rdsys::rd_kafka_message_t>,
    _batch: PhantomData<&'b Batch>,
}

impl Message<'_> {
    fn get(&self) -> &rdsys::rd_kafka_message_t {
        // SAFETY: the pointer is valid while the batch holds the message,
        // which the lifetime guarantees.
        unsafe { self.raw.as_ref() }
    }

    /// `Err` with librdkafka's code for an error delivered as a message
    /// (an offset out of range, a partition gone); `Ok` for a record.
    pub fn error(&self) -> Result<(), RDKafkaErrorCode> {
        let err = self.get().err;
        if err == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            Ok(())
        } else {
            Err(err.into())
        }
    }

    /// The value, `None` for a tombstone.
    pub fn payload(&self) -> Option<&[u8]> {
        let m = self.get();
        if m.payload.is_null() {
            return None;
        }
        // SAFETY: librdkafka guarantees `len` bytes at `payload` for the
        // message's life.
        Some(unsafe { std::slice::from_raw_parts(m.payload.cast::<u8>(), m.len) })
    }

    pub fn partition(&self) -> i32 {
        self.get().partition
    }

    pub fn offset(&self) -> i64 {
        self.get().offset
    }

    /// The topic's name ("" if librdkafka has none for it).
    pub fn topic(&self) -> &str {
        let rkt = self.get().rkt;
        if rkt.is_null() {
            return "";
        }
        // SAFETY: a message's topic handle lives as long as the message, and
        // its name is a NUL-terminated string owned by the handle.
        let name = unsafe { CStr::from_ptr(rdsys::rd_kafka_topic_name(rkt)) };
        name.to_str().unwrap_or("")
    }

    /// The record's timestamp in milliseconds, if it has one.
    pub fn timestamp_ms(&self) -> Option<i64> {
        let mut kind = rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
        // SAFETY: a valid message and a valid out-pointer.
        let ts = unsafe { rdsys::rd_kafka_message_timestamp(self.raw.as_ptr(), &mut kind) };
        (kind != rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && ts >= 0).then_some(ts)
    }
}
