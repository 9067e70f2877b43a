package natsstore

// ConsumerName is the consumer following the bucket now (tests kill its
// server).
func (s *Store) ConsumerName() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.consumerName
}
