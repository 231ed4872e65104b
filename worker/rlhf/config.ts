export * from '../../shared/training-config';
