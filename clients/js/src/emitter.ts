/** A minimal typed event emitter. `on` returns a function that unsubscribes. */
export class Emitter<Events extends object> {
  #listeners = new Map<PropertyKey, Set<(data: never) => void>>();

  on<K extends keyof Events>(event: K, listener: (data: Events[K]) => void): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener as (data: never) => void);
    return () => this.off(event, listener);
  }

  once<K extends keyof Events>(event: K, listener: (data: Events[K]) => void): () => void {
    const off = this.on(event, (data) => {
      off();
      listener(data);
    });
    return off;
  }

  off<K extends keyof Events>(event: K, listener: (data: Events[K]) => void): void {
    this.#listeners.get(event)?.delete(listener as (data: never) => void);
  }

  protected emit<K extends keyof Events>(event: K, data: Events[K]): void {
    for (const listener of [...(this.#listeners.get(event) ?? [])]) {
      try {
        (listener as (data: Events[K]) => void)(data);
      } catch (err) {
        // A throwing listener must not break delivery to the others.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}
