//! A small generational slab: O(1) insert, lookup and remove, ids never confused after reuse.

#[derive(Debug)]
pub(crate) struct Slab<T> {
    slots: Vec<(u32, Option<T>)>,
    free: Vec<u32>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self { slots: Vec::new(), free: Vec::new() }
    }
}

fn split(id: u64) -> (usize, u32) {
    ((id & 0xFFFF_FFFF) as usize, (id >> 32) as u32)
}

impl<T> Slab<T> {
    pub fn insert(&mut self, value: T) -> u64 {
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            slot.0 = slot.0.wrapping_add(1);
            slot.1 = Some(value);
            (u64::from(slot.0) << 32) | u64::from(index)
        } else {
            let index = self.slots.len() as u32;
            self.slots.push((1, Some(value)));
            (1u64 << 32) | u64::from(index)
        }
    }

    pub fn get(&self, id: u64) -> Option<&T> {
        let (index, generation) = split(id);
        match self.slots.get(index) {
            Some((g, Some(v))) if *g == generation => Some(v),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut T> {
        let (index, generation) = split(id);
        match self.slots.get_mut(index) {
            Some((g, Some(v))) if *g == generation => Some(v),
            _ => None,
        }
    }

    pub fn remove(&mut self, id: u64) -> Option<T> {
        let (index, generation) = split(id);
        match self.slots.get_mut(index) {
            Some((g, v @ Some(_))) if *g == generation => {
                self.free.push(index as u32);
                v.take()
            }
            _ => None,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (u64, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, (g, v))| v.as_ref().map(|v| ((u64::from(*g) << 32) | i as u64, v)))
    }

    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::Slab;

    #[test]
    fn reuse_changes_generation() {
        let mut s = Slab::default();
        let a = s.insert("a");
        assert_eq!(s.remove(a), Some("a"));
        let b = s.insert("b");
        assert_ne!(a, b);
        assert_eq!(s.get(a), None);
        assert_eq!(s.get(b), Some(&"b"));
        assert_eq!(s.len(), 1);
    }
}
