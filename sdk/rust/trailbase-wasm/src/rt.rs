//! A single-threaded futures executor, and the futures of host operations.
//!
//! A request or job is one task. The host calls into the guest (a request, a job, a completed
//! host operation); the guest polls whatever became ready and returns when nothing can make
//! progress without the host. Nothing here blocks: a task waiting for the host stays parked in
//! the task table until the host reports the operation done through `complete`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

type Task = Pin<Box<dyn Future<Output = ()>>>;

#[derive(Default)]
struct Tasks {
    next_id: u64,
    tasks: BTreeMap<u64, Task>,
}

/// What a finished host operation handed back: its status (0 ok, else an error) and bytes.
pub(crate) struct Completion {
    pub status: i32,
    pub bytes: Vec<u8>,
}

#[derive(Default)]
struct Ops {
    done: BTreeMap<u32, Completion>,
    waiting: BTreeMap<u32, Waker>,
}

thread_local! {
    static TASKS: RefCell<Tasks> = RefCell::new(Tasks::default());
    // Kept apart from TASKS: a waker may fire while a task is being polled.
    static READY: RefCell<Vec<u64>> = RefCell::new(Vec::new());
    static OPS: RefCell<Ops> = RefCell::new(Ops::default());
}

struct TaskWaker {
    id: u64,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        READY.with(|r| r.borrow_mut().push(self.id));
    }
}

/// Starts `fut` as a new task and polls it at once; a task that finishes in that poll (a handler
/// that needs nothing from the host) never enters the task table.
pub fn spawn(fut: impl Future<Output = ()> + 'static) {
    let id = TASKS.with(|t| {
        let mut t = t.borrow_mut();
        t.next_id += 1;
        t.next_id
    });
    let mut task: Task = Box::pin(fut);
    let waker = Waker::from(Arc::new(TaskWaker { id }));
    let mut cx = Context::from_waker(&waker);
    if task.as_mut().poll(&mut cx).is_pending() {
        TASKS.with(|t| t.borrow_mut().tasks.insert(id, task));
    }
    // Whatever that poll woke, this task included, runs now.
    run_ready();
}

/// Polls every task that was woken, until none is.
pub fn run_ready() {
    loop {
        let ids: Vec<u64> = READY.with(|r| std::mem::take(&mut *r.borrow_mut()));
        if ids.is_empty() {
            return;
        }
        for id in ids {
            // Taken out of the table while polled, so that the task may spawn others.
            let task = TASKS.with(|t| t.borrow_mut().tasks.remove(&id));
            let mut task = match task {
                Some(task) => task,
                None => continue, // finished already; a stale wake
            };
            let waker = Waker::from(Arc::new(TaskWaker { id }));
            let mut cx = Context::from_waker(&waker);
            if task.as_mut().poll(&mut cx).is_pending() {
                TASKS.with(|t| t.borrow_mut().tasks.insert(id, task));
            }
        }
    }
}

/// How many tasks are not finished.
#[cfg(test)]
pub fn pending_tasks() -> usize {
    TASKS.with(|t| t.borrow().tasks.len())
}

/// Records the result of host operation `op` and wakes the task waiting for it.
pub(crate) fn complete(op: u32, status: i32, bytes: Vec<u8>) {
    let waker = OPS.with(|o| {
        let mut o = o.borrow_mut();
        o.done.insert(op, Completion { status, bytes });
        o.waiting.remove(&op)
    });
    if let Some(w) = waker {
        w.wake();
    }
}

/// The future of a host operation started under the id `op`: ready once `complete(op, ..)`.
pub(crate) struct HostOp {
    pub op: u32,
}

impl Future for HostOp {
    type Output = Completion;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Completion> {
        let op = self.op;
        OPS.with(|o| {
            let mut o = o.borrow_mut();
            match o.done.remove(&op) {
                Some(c) => Poll::Ready(c),
                None => {
                    o.waiting.insert(op, cx.waker().clone());
                    Poll::Pending
                }
            }
        })
    }
}

impl Drop for HostOp {
    fn drop(&mut self) {
        // A dropped future (a task abandoned half-way) leaves nothing behind.
        OPS.with(|o| {
            let mut o = o.borrow_mut();
            o.done.remove(&self.op);
            o.waiting.remove(&self.op);
        });
    }
}

/// A future that is pending once, then ready: lets other tasks run.
pub struct YieldNow(bool);

pub fn yield_now() -> YieldNow {
    YieldNow(false)
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Runs both futures at once; ready with both outputs when both are.
pub async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let mut a = Box::pin(MaybeDone::Pending(a));
    let mut b = Box::pin(MaybeDone::Pending(b));
    poll_fn(move |cx| {
        let ra = a.as_mut().poll_step(cx);
        let rb = b.as_mut().poll_step(cx);
        if ra && rb {
            Poll::Ready((a.as_mut().take(), b.as_mut().take()))
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Runs every future at once; ready with their outputs, in order, when all are.
pub async fn join_all<F: Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut all: Vec<Pin<Box<MaybeDone<F>>>> = futs
        .into_iter()
        .map(|f| Box::pin(MaybeDone::Pending(f)))
        .collect();
    poll_fn(move |cx| {
        let mut done = true;
        for f in all.iter_mut() {
            done &= f.as_mut().poll_step(cx);
        }
        if done {
            Poll::Ready(all.iter_mut().map(|f| f.as_mut().take()).collect())
        } else {
            Poll::Pending
        }
    })
    .await
}

/// A future made of a closure (std's `poll_fn` is newer than Rust 1.63).
struct PollFn<F>(F);

fn poll_fn<T, F: FnMut(&mut Context<'_>) -> Poll<T> + Unpin>(f: F) -> PollFn<F> {
    PollFn(f)
}

impl<T, F: FnMut(&mut Context<'_>) -> Poll<T> + Unpin> Future for PollFn<F> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        (self.0)(cx)
    }
}

enum MaybeDone<F: Future> {
    Pending(F),
    Done(F::Output),
    Taken,
}

impl<F: Future> MaybeDone<F> {
    /// Polls a pending future; true once it has an output.
    fn poll_step(self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        // Safe: the future is never moved out of its pinned place; it is dropped in place when
        // replaced by its output.
        let this = unsafe { self.get_unchecked_mut() };
        match this {
            MaybeDone::Pending(f) => {
                let f = unsafe { Pin::new_unchecked(f) };
                match f.poll(cx) {
                    Poll::Ready(v) => {
                        *this = MaybeDone::Done(v);
                        true
                    }
                    Poll::Pending => false,
                }
            }
            _ => true,
        }
    }

    fn take(self: Pin<&mut Self>) -> F::Output {
        let this = unsafe { self.get_unchecked_mut() };
        match std::mem::replace(this, MaybeDone::Taken) {
            MaybeDone::Done(v) => v,
            _ => panic!("join: output taken twice"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn tasks_wait_for_their_host_operations() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        spawn(async move {
            let c = HostOp { op: 7 }.await;
            l.borrow_mut().push(format!("a {} {:?}", c.status, c.bytes));
        });
        let l = log.clone();
        spawn(async move {
            let (x, y) = join(HostOp { op: 8 }, HostOp { op: 9 }).await;
            l.borrow_mut().push(format!("b {} {}", x.status, y.status));
        });
        assert_eq!(pending_tasks(), 2);
        complete(9, 2, vec![]);
        run_ready();
        assert!(log.borrow().is_empty());
        complete(7, 0, vec![1, 2]);
        run_ready();
        assert_eq!(*log.borrow(), vec!["a 0 [1, 2]".to_string()]);
        complete(8, 1, vec![]);
        run_ready();
        assert_eq!(log.borrow()[1], "b 1 2");
        assert_eq!(pending_tasks(), 0);
    }

    #[test]
    fn a_completion_before_the_wait_is_kept() {
        let got = Rc::new(RefCell::new(None));
        complete(3, 5, b"x".to_vec());
        let g = got.clone();
        spawn(async move {
            yield_now().await;
            let all = join_all(vec![HostOp { op: 3 }]).await;
            *g.borrow_mut() = Some(all[0].status);
        });
        assert_eq!(*got.borrow(), Some(5));
    }
}
